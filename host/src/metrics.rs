//! Prometheus metrics, in one place: counters and histograms updated where
//! things happen, gauges computed from a snapshot at scrape time. A leaf:
//! it depends on no other module, and is handed in (never a global).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming a server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabel {
    /// The server id.
    pub server: String,
}

/// Labels of a message counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// The server id.
    pub server: String,
    /// `to_server` or `to_client`.
    pub direction: String,
}

/// Labels of a plugin call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The plugin.
    pub plugin: String,
    /// The function called.
    pub function: String,
}

/// Labels of a refused request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    /// The rule that refused it: `host`, `origin`, `content_type` or `token`.
    pub rule: String,
}

/// Labels of an audit event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuditLabels {
    /// Who called.
    pub principal: String,
    /// How it ended: `ok`, `tool_error`, `error`, `failed`.
    pub outcome: String,
}

/// One server's gauges, as of a scrape.
#[derive(Debug, Clone, Copy)]
pub struct ServerGauges<'a> {
    /// The server id.
    pub server: &'a str,
    /// Its state (`ready`, `starting`, ...).
    pub state: &'a str,
    /// Open client sessions.
    pub sessions: u64,
    /// Instance restarts.
    pub restarts: u64,
}

/// One instance's usage, as of a scrape.
#[derive(Debug, Clone, Copy)]
pub struct InstanceGauges<'a> {
    /// Its server.
    pub server: &'a str,
    /// The instance id.
    pub instance: &'a str,
    /// CPU seconds used so far (local).
    pub cpu_seconds: Option<f64>,
    /// CPU used now, in cores (Kubernetes).
    pub cpu_cores: Option<f64>,
    /// Resident memory, in bytes.
    pub memory_bytes: u64,
}

/// Labels of an instance gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    /// The server id.
    pub server: String,
    /// The instance id.
    pub instance: String,
}

/// Labels of a registry request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryLabels {
    /// `npm`, `pypi`, or a registry plugin's name.
    pub registry: String,
    /// `search`, `info` (the packages API) or `verify` (a start's lookups and downloads).
    pub operation: String,
}

/// Labels of a registry request's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryOutcome {
    /// `npm`, `pypi`, or a registry plugin's name.
    pub registry: String,
    /// `search`, `info` or `verify`.
    pub operation: String,
    /// `ok`, `not_found` or `error`.
    pub outcome: String,
}

/// Labels of a state gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state.
    pub state: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// One server's metrics, looked up once per instance rather than once per
/// message (each look-up hashes and copies the labels).
#[derive(Clone)]
pub struct ServerMetrics {
    /// Messages sent to the server.
    pub to_server: Counter,
    /// Messages sent to its clients.
    pub to_client: Counter,
    /// JSON-RPC error responses sent to its clients.
    pub errors: Counter,
    /// Its request → response round trips.
    pub round_trip: Histogram,
    /// Instances (of any server) the runtime started, restarts included.
    pub launched: Counter,
    /// Instances (of any server) that stopped or exited after starting.
    pub ended: Counter,
}

/// Every metric mcpod exports.
pub struct Metrics {
    /// Servers started.
    pub starts: Counter,
    /// Servers stopped.
    pub stops: Counter,
    /// JSON-RPC messages routed.
    pub messages: Family<MessageLabels, Counter>,
    /// JSON-RPC error responses sent to clients.
    pub errors: Family<ServerLabel, Counter>,
    /// Client request → server response round trips.
    pub round_trip: Family<ServerLabel, Histogram, fn() -> Histogram>,
    /// Plugin call durations.
    pub plugin_calls: Family<PluginLabels, Histogram, fn() -> Histogram>,
    /// HTTP requests refused before any handler, by rule.
    pub refused: Family<RuleLabel, Counter>,
    /// Audited calls and server starts and stops, by principal and outcome.
    pub audited: Family<AuditLabels, Counter>,
    /// Audit records dropped because the writer was behind.
    pub audit_dropped: Counter,
    /// Client connections open now (the listener's `limits.max_connections` caps it).
    pub connections: Gauge,
    /// Instances (processes or pods) the runtime started, restarts included.
    pub instances_launched: Counter,
    /// Instances that stopped or exited after starting.
    pub instances_ended: Counter,
    /// Registry requests by registry, operation and outcome.
    pub registry_requests: Family<RegistryOutcome, Counter>,
    /// Registry request durations by registry and operation.
    pub registry_seconds: Family<RegistryLabels, Histogram, fn() -> Histogram>,
    /// Packages returned by registry searches.
    pub registry_results: Family<RegistryLabels, Counter>,
    instance_cpu: Family<InstanceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    instance_cores: Family<InstanceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    instance_memory: Family<InstanceLabels, Gauge>,
    servers: Family<StateLabel, Gauge>,
    sessions: Family<ServerLabel, Gauge>,
    restarts: Family<ServerLabel, Gauge>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics with its own registry. The app makes one and
    /// hands it to the plugins, the manager and the gate (no global: two
    /// hosts in one process, as in the tests, count apart).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mcpod");
        let m = Metrics {
            starts: Counter::default(),
            stops: Counter::default(),
            messages: Family::default(),
            errors: Family::default(),
            round_trip: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            plugin_calls: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            refused: Family::default(),
            audited: Family::default(),
            audit_dropped: Counter::default(),
            connections: Gauge::default(),
            instances_launched: Counter::default(),
            instances_ended: Counter::default(),
            registry_requests: Family::default(),
            registry_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            registry_results: Family::default(),
            instance_cpu: Family::default(),
            instance_cores: Family::default(),
            instance_memory: Family::default(),
            servers: Family::default(),
            sessions: Family::default(),
            restarts: Family::default(),
            registry: Registry::default(),
        };
        registry.register("server_starts", "Servers started", m.starts.clone());
        registry.register("server_stops", "Servers stopped", m.stops.clone());
        registry.register("messages", "JSON-RPC messages routed", m.messages.clone());
        registry.register("errors", "JSON-RPC error responses sent to clients", m.errors.clone());
        registry.register("round_trip_seconds", "Client request to server response", m.round_trip.clone());
        registry.register("plugin_call_seconds", "Plugin call durations", m.plugin_calls.clone());
        registry.register("requests_refused", "HTTP requests refused before any handler, by rule", m.refused.clone());
        registry.register(
            "audit_events",
            "Audited calls, starts and stops by principal and outcome",
            m.audited.clone(),
        );
        registry.register(
            "audit_dropped",
            "Audit records dropped because the writer was behind",
            m.audit_dropped.clone(),
        );
        registry.register("connections_open", "Client connections open now", m.connections.clone());
        registry.register(
            "instances_launched",
            "Instances (processes or pods) started, restarts included",
            m.instances_launched.clone(),
        );
        registry.register("instances_ended", "Instances that stopped or exited", m.instances_ended.clone());
        registry.register(
            "registry_requests",
            "Registry requests by registry, operation and outcome",
            m.registry_requests.clone(),
        );
        registry.register("registry_request_seconds", "Registry request durations", m.registry_seconds.clone());
        registry.register(
            "registry_search_results",
            "Packages returned by registry searches",
            m.registry_results.clone(),
        );
        registry.register(
            "instance_cpu_seconds",
            "CPU seconds an instance's processes have used",
            m.instance_cpu.clone(),
        );
        registry.register(
            "instance_cpu_cores",
            "CPU an instance uses now, in cores, as the metrics API averages it",
            m.instance_cores.clone(),
        );
        registry.register(
            "instance_memory_bytes",
            "Resident memory of an instance's processes",
            m.instance_memory.clone(),
        );
        registry.register("servers", "Servers by state", m.servers.clone());
        registry.register("sessions", "Open client sessions per server", m.sessions.clone());
        registry.register("restarts", "Instance restarts per server", m.restarts.clone());
        Metrics { registry, ..m }
    }

    /// The handles of one server's message, error and round-trip metrics.
    pub fn server(&self, server: &str) -> ServerMetrics {
        let labels = |direction: &str| MessageLabels { server: server.to_string(), direction: direction.to_string() };
        let label = ServerLabel { server: server.to_string() };
        // One statement per look-up: a family's read guard lives to the end
        // of its statement, and a second look-up that creates a series in
        // the same family would wait for it forever.
        let to_server = self.messages.get_or_create(&labels("to_server")).clone();
        let to_client = self.messages.get_or_create(&labels("to_client")).clone();
        let errors = self.errors.get_or_create(&label).clone();
        let round_trip = self.round_trip.get_or_create(&label).clone();
        let (launched, ended) = (self.instances_launched.clone(), self.instances_ended.clone());
        ServerMetrics { to_server, to_client, errors, round_trip, launched, ended }
    }

    /// Removes a stopped server's series, so that `/metrics` does not keep
    /// reporting a server that no longer exists at its last values.
    pub fn forget_server(&self, server: &str) {
        for direction in ["to_server", "to_client"] {
            self.messages.remove(&MessageLabels { server: server.to_string(), direction: direction.to_string() });
        }
        let label = ServerLabel { server: server.to_string() };
        self.errors.remove(&label);
        self.round_trip.remove(&label);
    }

    /// The histogram of one plugin function's call durations.
    pub fn plugin_call(&self, plugin: &str, function: &str) -> Histogram {
        self.plugin_calls
            .get_or_create(&PluginLabels { plugin: plugin.to_string(), function: function.to_string() })
            .clone()
    }

    /// Counts an audit event of `principal` that ended in `outcome`.
    pub fn audit(&self, principal: &str, outcome: &str) {
        self.audited
            .get_or_create(&AuditLabels { principal: principal.to_string(), outcome: outcome.to_string() })
            .inc();
    }

    /// Records one registry request of `operation` that ended in `outcome`
    /// (`ok`, `not_found`, `error`) after `seconds`.
    pub fn registry(&self, registry: &str, operation: &str, outcome: &str, seconds: f64) {
        let labels = RegistryLabels { registry: registry.to_string(), operation: operation.to_string() };
        self.registry_seconds.get_or_create(&labels).observe(seconds);
        let o =
            RegistryOutcome { registry: labels.registry, operation: labels.operation, outcome: outcome.to_string() };
        self.registry_requests.get_or_create(&o).inc();
    }

    /// Counts a request refused by `rule`.
    pub fn refuse(&self, rule: &str) {
        self.refused.get_or_create(&RuleLabel { rule: rule.to_string() }).inc();
    }

    /// The OpenMetrics text, with the per-server gauges set from `servers`
    /// and the per-instance ones from `instances` (snapshots the caller
    /// takes, so that metrics depend on nothing): instances no longer
    /// running leave no series behind.
    pub fn render<'a>(
        &self,
        servers: impl IntoIterator<Item = ServerGauges<'a>>,
        instances: impl IntoIterator<Item = InstanceGauges<'a>>,
    ) -> String {
        self.servers.clear();
        self.sessions.clear();
        self.restarts.clear();
        self.instance_cpu.clear();
        self.instance_cores.clear();
        self.instance_memory.clear();
        for i in instances {
            let label = InstanceLabels { server: i.server.to_string(), instance: i.instance.to_string() };
            if let Some(seconds) = i.cpu_seconds {
                self.instance_cpu.get_or_create(&label).set(seconds);
            }
            if let Some(cores) = i.cpu_cores {
                self.instance_cores.get_or_create(&label).set(cores);
            }
            self.instance_memory.get_or_create(&label).set(i.memory_bytes.min(i64::MAX as u64) as i64);
        }
        for s in servers {
            self.servers.get_or_create(&StateLabel { state: s.state.to_string() }).inc();
            let label = ServerLabel { server: s.server.to_string() };
            self.sessions.get_or_create(&label).set(s.sessions as i64);
            self.restarts.get_or_create(&label).set(s.restarts as i64);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out = "# metrics could not be encoded\n".to_string();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_servers_series_are_gone_from_the_next_scrape_and_others_stay() {
        let m = Metrics::new();
        for id in ["gone-1", "kept-2"] {
            let s = m.server(id);
            s.to_server.inc();
            s.to_client.inc();
            s.errors.inc();
            s.round_trip.observe(0.001);
        }
        let before = m.render([], []);
        assert!(before.contains(r#"server="gone-1""#), "{before}");
        m.forget_server("gone-1");
        let after = m.render([], []);
        assert!(!after.contains(r#"server="gone-1""#), "{after}");
        assert!(after.contains(r#"mcpod_messages_total{server="kept-2",direction="to_server"} 1"#), "{after}");
    }
}
