//! A deliberately bad protocol adapter: each `decode` input is one frame,
//! except `panic`, `loop`, `garbage` (a frame that is not JSON), `sleep`
//! (waits, which an adapter cannot) and `shout` (writes to stderr, then
//! frames nothing).

use mcpod_plugin_sdk::protocol_adapter::*;

/// The plugin.
pub struct Misbehave;

impl Plugin for Misbehave {
    fn info() -> PluginInfo {
        plugin_info("misbehave-adapter", "0.0.1", "misbehaves on request")
    }
}

impl ProtocolAdapter for Misbehave {
    type Framer = Echo;

    fn transport_kind() -> Transport {
        Transport::Stdio
    }
}

/// Its framer.
pub struct Echo;

impl Framer for Echo {
    fn new(_max: u32) -> Self {
        Echo
    }

    fn decode(&self, input: Vec<u8>) -> Decoded {
        let text = String::from_utf8_lossy(&input).to_string();
        match text.as_str() {
            "panic" => panic!("deliberate adapter panic"),
            "loop" => loop {
                std::hint::black_box(&text);
            },
            "sleep" => {
                // Long enough that the clock cannot have passed it before
                // the poll, however loaded the machine (5 ms could: the
                // call then did not wait, and the test saw no error).
                std::thread::sleep(std::time::Duration::from_secs(60));
                Ok(Vec::new())
            }
            "shout" => {
                eprintln!("a line on stderr");
                Ok(Vec::new())
            }
            "garbage" => Ok(vec![Ok(Frame { event: None, id: None, data: "this is not json".to_string() })]),
            _ => Ok(vec![Ok(Frame { event: None, id: None, data: text })]),
        }
    }

    fn finish(&self) -> Decoded {
        Ok(Vec::new())
    }

    fn encode(&self, frame: Frame) -> Result<Vec<u8>, PluginError> {
        Ok(frame.data.into_bytes())
    }
}

mcpod_plugin_sdk::export_protocol_adapter!(Misbehave);
