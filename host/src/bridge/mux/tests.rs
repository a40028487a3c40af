use super::*;

fn m(text: &str) -> Message {
    Message::parse(text).unwrap()
}

fn to_server(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::ToServer(m) = a { Some(m.to_text()) } else { None }).collect()
}

fn to_clients(actions: &[Action]) -> Vec<(SessionId, String)> {
    actions
        .iter()
        .filter_map(
            |a| {
                if let Action::ToClient { session, msg, .. } = a { Some((*session, msg.to_text())) } else { None }
            },
        )
        .collect()
}

/// A mux whose handshake completed.
fn ready() -> Mux {
    let mut mux = Mux::new();
    let out = mux.begin_handshake(Some(raw(&serde_json::json!({"protocolVersion": "2025-11-25"}))));
    assert_eq!(
        to_server(&out),
        [r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#]
    );
    let out =
        mux.from_server(m(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{}}}"#));
    assert_eq!(to_server(&out), [r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#]);
    assert!(mux.is_ready());
    mux
}

#[test]
fn initialize_is_answered_from_the_cache_with_the_clients_id() {
    let mut mux = ready();
    let a = mux.open_session();
    let out = mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"init-a","method":"initialize","params":{}}"#));
    assert!(to_server(&out).is_empty(), "initialize is not forwarded again");
    assert_eq!(
        to_clients(&out),
        [(
            a,
            r#"{"jsonrpc":"2.0","id":"init-a","result":{"protocolVersion":"2025-11-25","capabilities":{}}}"#
                .to_string()
        )]
    );
    assert!(mux.from_client(a, m(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)).is_empty());
}

#[test]
fn initialize_before_the_handshake_waits_for_it() {
    let mut mux = Mux::new();
    let a = mux.open_session();
    mux.begin_handshake(None);
    assert!(mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":5,"method":"initialize"}"#)).is_empty());
    assert!(mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#)).is_empty());
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":1,"result":{"v":1}}"#));
    assert!(matches!(out[1], Action::Ready));
    assert_eq!(to_clients(&out), [(a, r#"{"jsonrpc":"2.0","id":5,"result":{"v":1}}"#.to_string())]);
    assert_eq!(to_server(&out)[1], r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, "queued request flushed");
}

#[test]
fn same_ids_from_two_sessions_never_cross() {
    let mut mux = ready();
    let a = mux.open_session();
    let b = mux.open_session();
    let ra =
        to_server(&mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}"#)));
    let rb =
        to_server(&mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"b"}}"#)));
    assert_eq!(ra, [r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a"}}"#]);
    assert_eq!(rb, [r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b"}}"#]);
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":3,"result":"for b"}"#));
    assert_eq!(to_clients(&out), [(b, r#"{"jsonrpc":"2.0","id":1,"result":"for b"}"#.to_string())]);
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":"for a"}"#));
    assert_eq!(to_clients(&out), [(a, r#"{"jsonrpc":"2.0","id":1,"result":"for a"}"#.to_string())]);
    assert!(
        mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":"again"}"#)).is_empty(),
        "a duplicate answer goes nowhere"
    );
}

#[test]
fn progress_tokens_are_mapped_per_session() {
    let mut mux = ready();
    let a = mux.open_session();
    let b = mux.open_session();
    let req = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"progressToken":7},"name":"slow"}}"#;
    let ta = to_server(&mux.from_client(a, m(req)));
    let tb = to_server(&mux.from_client(b, m(req)));
    assert!(ta[0].contains(r#""progressToken":"mcpod-2""#), "{}", ta[0]);
    assert!(tb[0].contains(r#""progressToken":"mcpod-3""#), "{}", tb[0]);
    let out = mux.from_server(m(
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"mcpod-3","progress":1}}"#,
    ));
    assert_eq!(
        to_clients(&out),
        [(
            b,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}"#
                .to_string()
        )]
    );
    assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Num(9)), .. }));
}

#[test]
fn a_server_request_naming_its_call_goes_to_that_session_or_is_refused() {
    let mut mux = ready();
    let a = mux.open_session();
    let b = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call"}"#));
    mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":6,"method":"tools/call"}"#));
    let ask = r#"{"jsonrpc":"2.0","id":"mcpod-input-1","method":"elicitation/create","params":{"message":"?","_meta":{"dev.mcpod/relatedRequest":2}}}"#;
    let out = mux.from_server(m(ask));
    let plain = r#"{"jsonrpc":"2.0","id":"mcpod-input-1","method":"elicitation/create","params":{"message":"?"}}"#;
    assert_eq!(
        to_clients(&out),
        [(a, plain.to_string())],
        "to the asker, not the most recent session; the hint stripped"
    );
    assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Num(5)), .. }));
    mux.close_session(a);
    let out = mux.from_server(m(&ask.replace("input-1", "input-2")));
    assert!(to_clients(&out).is_empty(), "never to another session");
    assert!(to_server(&out)[0].contains("no longer in flight"), "{:?}", to_server(&out));
}

#[test]
fn cancellation_is_mapped_to_the_upstream_id() {
    let mut mux = ready();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"x","method":"tools/call"}"#));
    let out = mux.from_client(
        a,
        m(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x","reason":"bored"}}"#),
    );
    assert_eq!(
        to_server(&out),
        [r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"bored"}}"#]
    );
    let b = mux.open_session();
    let out =
        mux.from_client(b, m(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x"}}"#));
    assert!(out.is_empty(), "a session cannot cancel another session's request");
}

#[test]
fn a_server_request_goes_to_the_only_session_attached_on_its_newest_request_and_only_it_answers() {
    let mut mux = ready();
    let b = mux.open_session();
    mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}"#));
    assert_eq!(to_clients(&out)[0].0, b);
    assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Num(1)), .. }));
    let a = mux.open_session();
    assert!(
        mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"s1","result":{"forged":true}}"#)).is_empty(),
        "only b may answer"
    );
    let out = mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":"s1","result":{"ok":true}}"#));
    assert_eq!(to_server(&out), [r#"{"jsonrpc":"2.0","id":"s1","result":{"ok":true}}"#]);
}

#[test]
fn with_two_sessions_busy_a_server_request_that_names_neither_is_refused_and_reaches_no_client() {
    let mut mux = ready();
    let a = mux.open_session();
    let b = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}}"#));
    mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}"#));
    assert!(to_clients(&out).is_empty(), "no client gets another's request: {out:?}");
    let refusal = &to_server(&out)[0];
    assert!(
        refusal.contains(r#""id":"s1""#) && refusal.contains("2 client sessions") && refusal.contains("does not guess")
    );
    assert!(refusal.contains("sampling/createMessage"), "{refusal}");
}

#[test]
fn a_server_request_goes_to_the_one_busy_session_while_others_are_attached_but_idle() {
    let mut mux = ready();
    let idle = mux.open_session();
    let busy = mux.open_session();
    mux.from_client(idle, m(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#));
    mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#));
    mux.from_client(busy, m(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sample"}}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}"#));
    assert_eq!(to_clients(&out)[0].0, busy, "the only session whose request the server can be working on");
    assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Num(7)), .. }));
    // With both idle, it is anyone's: refused.
    mux.from_server(m(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s2","method":"roots/list"}"#));
    assert!(to_clients(&out).is_empty() && to_server(&out)[0].contains("does not guess"), "{out:?}");
}

#[test]
fn with_two_sessions_a_server_request_that_names_one_of_their_requests_goes_to_that_one() {
    let mut mux = ready();
    let a = mux.open_session();
    let b = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"sample"}}"#));
    mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":"b1","method":"tools/call","params":{"name":"sample"}}"#));
    // a's call went upstream as 2, b's as 3; the upstream names 2.
    let hinted = format!(
        r#"{{"jsonrpc":"2.0","id":"s1","method":"elicitation/create","params":{{"_meta":{{"{META_RELATED}":2}}}}}}"#
    );
    let out = mux.from_server(m(&hinted));
    assert_eq!(
        to_clients(&out),
        [(a, r#"{"jsonrpc":"2.0","id":"s1","method":"elicitation/create","params":{}}"#.to_string())]
    );
    assert!(matches!(&out[0], Action::ToClient { related: Some(Id::Str(s)), .. } if s == "a1"));
}

#[test]
fn a_servers_ping_is_answered_by_the_host_whoever_is_attached() {
    let mut mux = ready();
    let (a, b) = (mux.open_session(), mux.open_session());
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#));
    mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#));
    assert_eq!(to_server(&out), [r#"{"jsonrpc":"2.0","id":"p","result":{}}"#]);
    assert!(to_clients(&out).is_empty());
}

#[test]
fn server_requests_never_go_to_a_deaf_session_to_be_answered() {
    let mut mux = ready();
    let asker = mux.open_session();
    let deaf = mux.open_deaf_session();
    mux.from_client(asker, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}}"#));
    mux.from_client(deaf, m(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s1","method":"elicitation/create","params":{}}"#));
    assert_eq!(to_clients(&out)[0].0, asker, "the deaf session is not a candidate, so the asker is the only one");
    mux.close_session(asker);
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s2","method":"elicitation/create","params":{}}"#));
    assert!(to_server(&out)[0].contains("no client is connected"), "no session can be asked: {out:?}");
    let shown: Vec<_> = to_clients(&out).into_iter().map(|(s, _)| s).collect();
    assert_eq!(shown, [deaf], "shown to the only waiting session that cannot be asked, so that its client hears why");
    // Its answer goes nowhere: the server has had one.
    assert!(to_server(&mux.from_client(deaf, m(r#"{"jsonrpc":"2.0","id":"s2","result":{}}"#))).is_empty());
    // With two such sessions waiting, whose it is cannot be known: neither is shown it.
    let other = mux.open_deaf_session();
    mux.from_client(other, m(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sample"}}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s3","method":"elicitation/create","params":{}}"#));
    assert!(to_clients(&out).is_empty(), "{out:?}");
}

#[test]
fn a_session_waiting_for_its_client_is_asked_nothing_new_so_another_can_be() {
    let mut mux = ready();
    let parked = mux.open_session();
    let other = mux.open_session();
    mux.from_client(parked, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}}"#));
    mux.set_waiting(parked, true);
    mux.from_client(other, m(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sample"}}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s1","method":"elicitation/create","params":{}}"#));
    let shown: Vec<_> = to_clients(&out).into_iter().map(|(s, _)| s).collect();
    assert_eq!(shown, [other], "the waiting session is not a candidate: {out:?}");
    // Back from waiting with both busy, whose a new request is cannot be known.
    mux.set_waiting(parked, false);
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":"s2","method":"elicitation/create","params":{}}"#));
    assert!(to_clients(&out).is_empty(), "{out:?}");
    assert!(to_server(&out)[0].contains("2 client sessions"), "{out:?}");
}

#[test]
fn a_server_request_naming_a_deaf_sessions_request_is_refused_and_only_shown_to_it() {
    // Found by the fuzz target mux_sequence: the hint chose the session
    // even when that session cannot answer, and the server waited in vain.
    let mut mux = ready();
    let deaf = mux.open_deaf_session();
    mux.from_client(deaf, m(r#"{"jsonrpc":"2.0","id":"d1","method":"tools/call","params":{"name":"sample"}}"#));
    let hinted = format!(
        r#"{{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{{"_meta":{{"{META_RELATED}":2}}}}}}"#
    );
    let out = mux.from_server(m(&hinted));
    assert!(to_server(&out)[0].contains("cannot be asked anything"), "{out:?}");
    let shown = to_clients(&out);
    assert_eq!(shown.len(), 1, "shown, not to be answered: {out:?}");
    assert_eq!(shown[0].0, deaf);
    assert!(!shown[0].1.contains(META_RELATED), "the hint is the mux's own: {}", shown[0].1);
    assert!(to_server(&mux.from_client(deaf, m(r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#))).is_empty());
}

#[test]
fn a_lost_server_fails_every_in_flight_request_at_once() {
    let mut mux = ready();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#));
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call"}"#));
    let out = mux.server_lost("exit status 1");
    let errors = to_clients(&out);
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|(_, t)| t.contains("-32001") && t.contains("exit status 1")));
    assert!(!mux.is_ready());
    assert_eq!(mux.in_flight(), 0);
    let out = mux.begin_handshake(None);
    assert!(
        to_server(&out)[0].contains(r#""params":{"protocolVersion":"2025-11-25"}"#),
        "re-initialized with the same params"
    );
}

#[test]
fn closing_a_session_cancels_its_requests_upstream() {
    let mut mux = ready();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#));
    let out = mux.close_session(a);
    assert_eq!(to_server(&out).len(), 1);
    assert!(to_server(&out)[0].contains("notifications/cancelled"));
    assert!(mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#)).is_empty());
}

#[test]
fn notifications_are_broadcast_and_resource_updates_go_to_subscribers() {
    let mut mux = ready();
    let a = mux.open_session();
    let b = mux.open_session();
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#));
    assert_eq!(to_clients(&out).len(), 2);
    mux.from_client(b, m(r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://1"}}"#));
    let out = mux
        .from_server(m(r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"test://1"}}"#));
    assert_eq!(to_clients(&out).iter().map(|(s, _)| *s).collect::<Vec<_>>(), [b]);
    let _ = a;
}

fn audits(actions: &[Action]) -> Vec<(SessionId, &CallRecord)> {
    actions
        .iter()
        .filter_map(|a| if let Action::Audit { session, call } = a { Some((*session, call)) } else { None })
        .collect()
}

#[test]
fn an_answered_tool_call_is_audited_with_its_name_and_a_digest_of_its_arguments_never_their_values() {
    let mut mux = ready();
    let a = mux.open_session();
    let sent = mux.from_client(
        a,
        m(r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"echo","arguments":{"message":"hunter2"}}}"#),
    );
    assert!(audits(&sent).is_empty(), "recorded when answered, not when sent");
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{"content":[]}}"#));
    let [(session, call)] = audits(&out)[..] else { panic!("one record: {out:?}") };
    assert_eq!(session, a);
    assert_eq!((call.method.as_str(), call.name.as_deref(), call.outcome), ("tools/call", Some("echo"), Outcome::Ok));
    assert_eq!(call.request_id, Id::Str("c1".into()));
    assert_eq!(call.args_sha256.as_deref(), Some(crate::audit::digest(r#"{"message":"hunter2"}"#).as_str()));
    assert!(!format!("{call:?}").contains("hunter2"));
}

#[test]
fn a_completion_is_audited_by_its_reference_and_a_digest_of_its_argument_text_as_sent() {
    let mut mux = ready();
    let a = mux.open_session();
    let sent = r#"{ "value": "hun", "name" : "q" }"#;
    mux.from_client(
        a,
        m(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{{"ref":{{"type":"ref/prompt","name":"greet"}},"argument":{sent}}}}}"#
        )),
    );
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{"completion":{"values":[]}}}"#));
    let (_, call) = audits(&out)[0];
    assert_eq!(call.name.as_deref(), Some("greet"));
    assert_eq!(call.args_sha256.as_deref(), Some(crate::audit::digest(sent).as_str()));
}

#[test]
fn a_tool_error_an_error_answer_and_a_lost_server_are_told_apart() {
    let mut mux = ready();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"boom"}}"#));
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///x"}}"#));
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p","arguments":{}}}"#));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{"content":[],"isError":true}}"#));
    assert_eq!(audits(&out)[0].1.outcome, Outcome::ToolError);
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"no"}}"#));
    let (_, call) = audits(&out)[0];
    assert_eq!(
        (call.name.as_deref(), call.outcome, call.error_code),
        (Some("file:///x"), Outcome::Error, Some(-32602))
    );
    let out = mux.server_lost("exited");
    let (_, call) = audits(&out)[0];
    assert_eq!(
        (call.method.as_str(), call.outcome, call.args_sha256.is_some()),
        ("prompts/get", Outcome::Failed, true)
    );
}

#[test]
fn listings_notifications_and_the_hosts_own_requests_are_not_audited() {
    let mut mux = ready();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#));
    let (host_id, _) = mux.host_request("tools/call", Some(raw(&serde_json::json!({"name": "x"}))));
    let out = mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#));
    assert!(audits(&out).is_empty());
    let out = mux.from_server(m(&format!(r#"{{"jsonrpc":"2.0","id":{host_id},"result":{{}}}}"#)));
    assert!(audits(&out).is_empty(), "{out:?}");
}

/// A ready mux with exposure rules: `crash` and `sle*` hidden, `echo` shown as `say`.
fn ready_showing() -> Mux {
    let mut rules = crate::expose::Expose::default();
    rules.tools.deny = vec!["crash".into(), "sle*".into()];
    rules.tools.rename.insert("echo".into(), "say".into());
    rules.tools.descriptions.insert("add".into(), "Adds, carefully".into());
    rules.resources.allow = vec!["file:///public/*".into()];
    let mut mux = Mux::showing(Some(std::sync::Arc::new(rules)));
    mux.begin_handshake(None);
    mux.from_server(m(r#"{"jsonrpc":"2.0","id":1,"result":{"capabilities":{}}}"#));
    mux
}

#[test]
fn a_hidden_tool_is_absent_from_the_list_and_renamed_ones_show_their_new_name() {
    let mut mux = ready_showing();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#));
    let out = mux.from_server(m(
        r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo","description":"Echoes"},{"name":"add","description":"Adds"},{"name":"crash"},{"name":"sleep"}]}}"#,
    ));
    assert_eq!(
        to_clients(&out),
        [(
            a,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"say","description":"Echoes"},{"name":"add","description":"Adds, carefully"}]}}"#
                .to_string()
        )]
    );
}

#[test]
fn a_call_to_a_hidden_or_old_name_is_refused_before_the_server_and_a_new_name_reaches_it_by_its_own() {
    let mut mux = ready_showing();
    let a = mux.open_session();
    for name in ["crash", "sleep", "echo"] {
        let call = format!(r#"{{"jsonrpc":"2.0","id":"{name}","method":"tools/call","params":{{"name":"{name}"}}}}"#);
        let out = mux.from_client(a, m(&call));
        assert!(to_server(&out).is_empty(), "{name} never reaches the server");
        let (_, answer) = &to_clients(&out)[0];
        assert!(
            answer.contains("-32602") && answer.contains(&format!("`{name}`")) && answer.contains("expose.tools"),
            "{answer}"
        );
        assert_eq!(audits(&out)[0].1.outcome, Outcome::Denied);
    }
    let out = mux.from_client(
        a,
        m(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"say","arguments":{"message":"hi"}}}"#),
    );
    assert_eq!(
        to_server(&out),
        [r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#]
    );
    let out = mux.from_client(
        a,
        m(r#"{"jsonrpc":"2.0","id":8,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}"#),
    );
    assert!(to_server(&out).is_empty() && to_clients(&out)[0].1.contains("expose.resources"), "{out:?}");
}

/// A ready mux of server `github` governed by policies: developers may
/// call `get_*` tools, admins anything but `delete_repo`.
fn ready_governed() -> (tempfile::TempDir, Mux) {
    governed_with(r#"{"capabilities":{}}"#)
}

/// A mux of server `github` governed as [`ready_governed`]'s, whose
/// server answered `initialize` with `result`.
fn governed_with(result: &str) -> (tempfile::TempDir, Mux) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policies.cedar");
    std::fs::write(
        &path,
        r#"
@id("developers-read")
permit(principal in Group::"developers", action == Action::"call_tool", resource)
when { resource.name like "get_*" };
@id("admins")
permit(principal in Role::"admin", action, resource);
@id("no-deletes")
forbid(principal, action, resource) when { resource.name == "delete_repo" };
"#,
    )
    .unwrap();
    let access = crate::access::Access::load(Some(path)).unwrap();
    let mut mux = Mux::new().governed_by(Some(access), crate::access::ServerFacts::named("github"));
    mux.begin_handshake(None);
    mux.from_server(m(&format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#)));
    (dir, mux)
}

fn principal(name: &str, role: crate::identity::Role, groups: &[&str]) -> Arc<crate::identity::Principal> {
    let mut p = crate::identity::Principal::new(name, "https://idp", role);
    p.groups = groups.iter().map(|g| g.to_string()).collect();
    Arc::new(p)
}

#[test]
fn each_session_sees_only_the_tools_its_principal_may_call_and_a_shared_cache_scope_becomes_private() {
    let (_dir, mut mux) = ready_governed();
    let (dev, admin) = (mux.open_session(), mux.open_session());
    mux.act_as(dev, principal("alice", crate::identity::Role::User, &["developers"]));
    mux.act_as(admin, principal("root", crate::identity::Role::Admin, &[]));
    let list =
        r#"{"tools":[{"name":"get_issue"},{"name":"create_issue"},{"name":"delete_repo"}],"cacheScope":"public"}"#;
    mux.from_client(dev, m(r#"{"jsonrpc":"2.0","id":"d","method":"tools/list"}"#));
    mux.from_client(admin, m(r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#));
    let out = mux.from_server(m(&format!(r#"{{"jsonrpc":"2.0","id":2,"result":{list}}}"#)));
    assert_eq!(
        to_clients(&out),
        [(
            dev,
            r#"{"jsonrpc":"2.0","id":"d","result":{"tools":[{"name":"get_issue"}],"cacheScope":"private"}}"#
                .to_string()
        )]
    );
    let out = mux.from_server(m(&format!(r#"{{"jsonrpc":"2.0","id":3,"result":{list}}}"#)));
    assert_eq!(
        to_clients(&out),
        [(
            admin,
            r#"{"jsonrpc":"2.0","id":"a","result":{"tools":[{"name":"get_issue"},{"name":"create_issue"}],"cacheScope":"private"}}"#
                .to_string()
        )]
    );
}

#[test]
fn a_denied_call_never_reaches_the_server_and_its_error_and_audit_name_the_policy_outcome() {
    let (_dir, mut mux) = ready_governed();
    let (dev, admin) = (mux.open_session(), mux.open_session());
    mux.act_as(dev, principal("alice", crate::identity::Role::User, &["developers"]));
    mux.act_as(admin, principal("root", crate::identity::Role::Admin, &[]));
    let call =
        |name: &str| m(&format!(r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"{name}"}}}}"#));
    let out = mux.from_client(dev, call("create_issue"));
    assert!(to_server(&out).is_empty());
    let answer = &to_clients(&out)[0].1;
    assert!(
        answer.contains("-32602") && answer.contains("denied by policy") && answer.contains("no policy permits it"),
        "{answer}"
    );
    assert_eq!(audits(&out)[0].1.policy.as_deref(), Some(answer_reason(answer)));
    let out = mux.from_client(admin, call("delete_repo"));
    assert!(to_server(&out).is_empty());
    assert!(to_clients(&out)[0].1.contains("forbidden by no-deletes"), "{out:?}");
    assert_eq!(audits(&out)[0].1.outcome, Outcome::Denied);
    assert_eq!(to_server(&mux.from_client(dev, call("get_issue"))).len(), 1, "a permitted call goes through");
}

/// The message of a JSON-RPC error answer.
fn answer_reason(answer: &str) -> &str {
    let start = answer.find("denied by policy").unwrap();
    let end = answer[start..].find('"').map(|e| start + e).unwrap();
    &answer[start..end]
}

#[test]
fn a_governed_server_announces_list_changes_and_a_policy_change_tells_every_session_each_list_changed() {
    let (_dir, mut mux) =
        governed_with(r#"{"capabilities":{"tools":{},"prompts":{"listChanged":false},"logging":{}}}"#);
    let caps: Value = serde_json::from_str(mux.initialize_result().unwrap().get()).unwrap();
    assert_eq!(
        caps["capabilities"],
        serde_json::json!({"tools": {"listChanged": true}, "prompts": {"listChanged": true}, "logging": {}})
    );
    let (a, b) = (mux.open_session(), mux.open_session());
    mux.act_as(a, principal("alice", crate::identity::Role::User, &["developers"]));
    let told = to_clients(&mux.policies_changed());
    let expect = |s| {
        [
            (s, r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#.to_string()),
            (s, r#"{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}"#.to_string()),
        ]
    };
    let mut want: Vec<_> = expect(a).into_iter().chain(expect(b)).collect();
    want.sort();
    let mut told = told;
    told.sort();
    assert_eq!(told, want, "no resources list: no resources notification");
}

#[test]
fn an_ungoverned_server_is_never_told_of_policy_changes() {
    let mut mux = ready();
    mux.open_session();
    assert!(mux.policies_changed().is_empty());
    let caps: Value = serde_json::from_str(mux.initialize_result().unwrap().get()).unwrap();
    assert_eq!(caps["capabilities"], serde_json::json!({}));
}

#[test]
fn an_unanswered_request_times_out_with_an_error_naming_the_limit_and_is_cancelled_upstream() {
    use std::time::{Duration, Instant};
    let mut mux = ready();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"hang"}}"#));
    let limit = Duration::from_secs(60);
    assert!(mux.expire(Instant::now() + Duration::from_secs(59), limit).is_empty(), "not yet");
    let out = mux.expire(Instant::now() + Duration::from_secs(61), limit);
    let answers = to_clients(&out);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, a);
    assert!(answers[0].1.contains(r#""id":"slow""#) && answers[0].1.contains("-32001"), "{}", answers[0].1);
    assert!(answers[0].1.contains("60 s (limits.request_timeout_secs"), "{}", answers[0].1);
    let cancels = to_server(&out);
    assert_eq!(cancels.len(), 1);
    assert!(
        cancels[0].contains("notifications/cancelled") && cancels[0].contains(r#""requestId":2"#),
        "{}",
        cancels[0]
    );
    assert_eq!(audits(&out).len(), 1, "the timed-out call is audited");
    assert_eq!(mux.in_flight(), 0);
    assert!(mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#)).is_empty(), "a late answer goes nowhere");
}

#[test]
fn a_progress_notification_restarts_the_requests_clock() {
    use std::time::{Duration, Instant};
    let mut mux = ready();
    let a = mux.open_session();
    let req =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"p"},"name":"slow"}}"#;
    mux.from_client(a, m(req));
    let limit = Duration::from_secs(10);
    // The mux reads the clock itself when progress arrives; the request is
    // 600 ms older than the progress, and the checks keep 300 ms apart from both.
    std::thread::sleep(Duration::from_millis(600));
    let progress =
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"mcpod-2","progress":1}}"#;
    assert_eq!(to_clients(&mux.from_server(m(progress))).len(), 1);
    let now = Instant::now();
    assert!(
        mux.expire(now + limit - Duration::from_millis(300), limit).is_empty(),
        "the clock restarted at the progress"
    );
    assert_eq!(to_clients(&mux.expire(now + limit, limit)).len(), 1);
}

#[test]
fn a_request_waiting_on_its_clients_answer_to_the_server_does_not_time_out() {
    use std::time::{Duration, Instant};
    let mut mux = ready();
    let a = mux.open_session();
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask"}}"#));
    mux.from_server(m(r#"{"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{}}"#));
    let late = Instant::now() + Duration::from_secs(600);
    assert!(mux.expire(late, Duration::from_secs(60)).is_empty(), "a person may be answering");
    mux.from_client(a, m(r#"{"jsonrpc":"2.0","id":"e1","result":{"action":"accept"}}"#));
    assert_eq!(
        to_clients(&mux.expire(late, Duration::from_secs(60))).len(),
        1,
        "once answered, the clock counts again"
    );
}

#[test]
fn a_handshake_without_an_answer_is_overdue_only_after_the_limit() {
    use std::time::{Duration, Instant};
    let mut mux = Mux::new();
    assert!(!mux.handshake_overdue(Instant::now() + Duration::from_secs(999), Duration::from_secs(1)), "none sent");
    mux.begin_handshake(None);
    assert!(!mux.handshake_overdue(Instant::now(), Duration::from_secs(30)));
    assert!(mux.handshake_overdue(Instant::now() + Duration::from_secs(31), Duration::from_secs(30)));
}

#[test]
fn a_session_that_sends_without_waiting_is_refused_past_its_in_flight_budget_and_others_are_not() {
    let mut mux = ready();
    let (flooder, other) = (mux.open_session(), mux.open_session());
    let (max_requests, max_bytes) = MAX_IN_FLIGHT_PER_SESSION;
    for i in 0..max_requests {
        let out = mux.from_client(flooder, m(&format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call"}}"#)));
        assert_eq!(to_server(&out).len(), 1, "request {i} goes upstream");
    }
    let out = mux.from_client(flooder, m(r#"{"jsonrpc":"2.0","id":"one-more","method":"tools/call"}"#));
    assert!(to_server(&out).is_empty());
    let refused = &to_clients(&out)[0];
    assert!(refused.0 == flooder && refused.1.contains("-32002") && refused.1.contains("in flight"), "{refused:?}");
    let out = mux.from_client(other, m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#));
    assert_eq!(to_server(&out).len(), 1, "another session is not held back");
    // An answer frees a place.
    mux.from_server(m(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#));
    let out = mux.from_client(flooder, m(r#"{"jsonrpc":"2.0","id":"now","method":"tools/call"}"#));
    assert_eq!(to_server(&out).len(), 1);

    // And bytes: large requests in flight count against their session's bytes.
    let mut mux = ready();
    let heavy = mux.open_session();
    let big = "x".repeat(max_bytes / 4);
    let call = |id: u32| m(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"a":"{big}"}}}}"#));
    for id in 0..3 {
        assert_eq!(to_server(&mux.from_client(heavy, call(id))).len(), 1);
    }
    let out = mux.from_client(heavy, call(3));
    assert!(to_server(&out).is_empty() && to_clients(&out)[0].1.contains("bytes"), "{out:?}");
}

#[test]
fn the_configs_default_in_flight_budget_is_the_built_in_one() {
    let l = crate::config::LimitsSection::default();
    assert_eq!(
        (l.max_requests_in_flight_per_session, l.max_in_flight_kib_per_session * 1024),
        MAX_IN_FLIGHT_PER_SESSION
    );
}

#[test]
fn a_configured_in_flight_budget_is_the_one_kept_and_the_refusal_names_its_key() {
    let mut mux = Mux::new().with_in_flight_budget(2, 1 << 20);
    mux.begin_handshake(Some(raw(&serde_json::json!({"protocolVersion": "2025-11-25"}))));
    mux.from_server(m(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{}}}"#));
    let s = mux.open_session();
    for i in 0..2 {
        let out = mux.from_client(s, m(&format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call"}}"#)));
        assert_eq!(to_server(&out).len(), 1, "request {i} goes upstream");
    }
    let out = mux.from_client(s, m(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call"}"#));
    assert!(to_server(&out).is_empty(), "the third is one too many: {out:?}");
    assert!(to_clients(&out)[0].1.contains("limits.max_requests_in_flight_per_session"), "{out:?}");
}
