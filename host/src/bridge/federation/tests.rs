//! The virtual session's rules, one sentence each.

use super::*;
use crate::expose::NameRules;

fn msg(v: Value) -> Message {
    Message::parse(&v.to_string()).expect("a message")
}

fn member_init(caps: Value) -> Option<Value> {
    Some(json!({"protocolVersion": "2025-11-25", "capabilities": caps, "serverInfo": {"name": "m", "version": "1"}}))
}

/// A handshake-era session with members `time` and `everything`, initialized.
fn two_members() -> Federation {
    let mut f = Federation::new("team", false, Default::default());
    f.add_member("time", None, member_init(json!({"tools": {}})), false);
    f.add_member("everything", None, member_init(json!({"tools": {}, "resources": {"subscribe": true}})), false);
    f.from_client(msg(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}})));
    f
}

fn to_members(actions: &[Action]) -> Vec<(MemberId, Message)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToMember { member, msg } => Some((*member, msg.clone())),
            _ => None,
        })
        .collect()
}

fn to_client(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToClient { msg, .. } => serde_json::from_str(&msg.to_text()).ok(),
            _ => None,
        })
        .collect()
}

/// Answers each member request in `actions` with `answer(member, method, params)`; returns what reaches the client.
fn answer(f: &mut Federation, actions: Vec<Action>, answer: impl Fn(MemberId, &str, &Value) -> Value) -> Vec<Value> {
    let mut out = to_client(&actions);
    let mut queue = to_members(&actions);
    while let Some((member, m)) = queue.pop() {
        let Some(id) = m.id.value().cloned() else { continue };
        let reply = Message::response(id, raw(&answer(member, m.method(), &m.params_value())));
        let next = f.from_member(member, reply, None);
        out.extend(to_client(&next));
        queue.extend(to_members(&next));
    }
    out
}

fn tools(names: &[&str]) -> Value {
    json!({"tools": names.iter().map(|n| json!({"name": n, "inputSchema": {"type": "object"}})).collect::<Vec<_>>()})
}

#[test]
fn initialize_answers_the_union_of_the_members_and_initializes_each_member() {
    let mut f = Federation::new("team", false, Default::default());
    f.add_member("a", None, member_init(json!({"tools": {}})), false);
    f.add_member("b", None, member_init(json!({"resources": {"subscribe": true}, "logging": {}})), false);
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {"sampling": {}}, "clientInfo": {"name": "c", "version": "1"}}})));
    let sent = to_members(&actions);
    assert_eq!(sent.iter().filter(|(_, m)| m.method() == "initialize").count(), 2);
    assert_eq!(sent.iter().filter(|(_, m)| m.method() == "notifications/initialized").count(), 2);
    assert!(
        sent.iter()
            .all(|(_, m)| m.method() != "initialize" || m.params_value()["capabilities"]["sampling"].is_object())
    );
    let answer = &to_client(&actions)[0];
    assert_eq!(answer["id"], 1);
    let caps = &answer["result"]["capabilities"];
    assert_eq!(caps["tools"]["listChanged"], true);
    assert_eq!(caps["resources"]["subscribe"], true);
    assert!(caps["logging"].is_object() && caps.get("prompts").is_none(), "{caps}");
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25");
}

#[test]
fn tools_of_every_member_are_listed_under_their_keys_even_when_names_collide() {
    let mut f = two_members();
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})));
    let out =
        answer(&mut f, actions, |m, _, _| if m == 0 { tools(&["echo", "get_time"]) } else { tools(&["echo", "add"]) });
    let names: Vec<&str> =
        out[0]["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["everything__add", "everything__echo", "time__echo", "time__get_time"]);
    assert_eq!(out[0]["id"], 7);
}

#[test]
fn a_call_goes_to_the_member_its_name_names_under_the_clients_own_id_and_comes_back() {
    let mut f = two_members();
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "everything__echo", "arguments": {"message": "hi"}}})));
    let sent = to_members(&actions);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 1);
    assert_eq!(sent[0].1.params_value()["name"], "echo");
    assert_eq!(sent[0].1.id.value(), Some(&Id::Num(9)));
    let back = f.from_member(1, msg(json!({"jsonrpc": "2.0", "id": 9, "result": {"content": []}})), Some(Id::Num(9)));
    match &back[..] {
        [Action::ToClient { msg, related }] => {
            assert_eq!(msg.id.value(), Some(&Id::Num(9)));
            assert_eq!(related, &Some(Id::Num(9)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_name_without_a_known_key_or_hidden_by_the_members_rules_is_an_unknown_tool() {
    let mut f = Federation::new("team", false, Default::default());
    let hide = Expose { tools: NameRules { deny: vec!["secret".into()], ..Default::default() }, ..Default::default() };
    f.add_member("a", Some(Arc::new(hide)), member_init(json!({"tools": {}})), false);
    for name in ["echo", "b__echo", "a__secret"] {
        let out = to_client(
            &f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}}))),
        );
        assert_eq!(out[0]["error"]["code"], code::INVALID_PARAMS, "{name}: {out:?}");
    }
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})));
    let out = answer(&mut f, actions, |_, _, _| tools(&["echo", "secret"]));
    assert_eq!(out[0]["result"]["tools"].as_array().unwrap().len(), 1, "{out:?}");
}

#[test]
fn a_down_member_is_absent_from_listings_announced_and_its_calls_fail_at_once_naming_it() {
    let mut f = two_members();
    let changed = to_client(&f.set_alive(0, false));
    assert!(changed.iter().any(|m| m["method"] == "notifications/tools/list_changed"), "{changed:?}");
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})));
    assert_eq!(to_members(&actions).len(), 1, "only the live member is asked");
    let out = answer(&mut f, actions, |_, _, _| tools(&["echo"]));
    assert_eq!(out[0]["result"]["tools"][0]["name"], "everything__echo");
    let out = to_client(&f.from_client(msg(
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "time__get_time"}}),
    )));
    assert_eq!(out[0]["error"]["code"], code::SERVER_UNAVAILABLE);
    assert!(out[0]["error"]["message"].as_str().unwrap().contains("`time`"), "{out:?}");
    assert!(!to_client(&f.set_alive(0, true)).is_empty(), "coming back is announced too");
}

#[test]
fn listings_page_by_name_so_a_cursor_survives_a_member_list_changing() {
    let mut f = two_members();
    let many: Vec<String> = (0..150).map(|i| format!("t{i:03}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})));
    let first = answer(&mut f, actions, |m, _, _| if m == 0 { tools(&names) } else { tools(&[]) });
    let page = first[0]["result"]["tools"].as_array().unwrap();
    assert_eq!(page.len(), PAGE);
    let cursor = first[0]["result"]["nextCursor"].as_str().unwrap().to_string();
    // A tool before the cursor appears meanwhile: the next page neither repeats nor skips.
    let actions =
        f.from_client(msg(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": cursor}})));
    let second = answer(&mut f, actions, |m, _, _| {
        let mut more = names.clone();
        more.push("a_new_one");
        if m == 0 { tools(&more) } else { tools(&[]) }
    });
    let rest: Vec<&str> =
        second[0]["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(rest.len(), 50);
    assert_eq!(rest[0], "time__t100");
    assert!(second[0]["result"].get("nextCursor").is_none());
}

#[test]
fn a_members_own_pages_are_followed_before_the_client_is_answered() {
    let mut f = two_members();
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/list"})));
    let out = answer(&mut f, actions, |m, _, params| match (m, params["cursor"].as_str()) {
        (0, None) => json!({"prompts": [{"name": "p1"}], "nextCursor": "2"}),
        (0, Some("2")) => json!({"prompts": [{"name": "p2"}]}),
        _ => json!({"prompts": []}),
    });
    let names: Vec<&str> =
        out[0]["result"]["prompts"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["time__p1", "time__p2"]);
}

#[test]
fn resources_keep_their_uris_and_reads_go_to_the_member_that_listed_them() {
    let mut f = two_members();
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "resources/list"})));
    answer(&mut f, actions, |m, _, _| {
        if m == 1 {
            json!({"resources": [{"uri": "test://static/1", "name": "one"}]})
        } else {
            json!({"resources": []})
        }
    });
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 2, "method": "resources/templates/list"})));
    answer(&mut f, actions, |m, _, _| {
        if m == 0 {
            json!({"resourceTemplates": [{"uriTemplate": "time://zone/{tz}", "name": "zone"}]})
        } else {
            json!({"resourceTemplates": []})
        }
    });
    let read = |f: &mut Federation, uri: &str| {
        to_members(
            &f.from_client(msg(json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}}))),
        )
    };
    assert_eq!(read(&mut f, "test://static/1")[0].0, 1);
    assert_eq!(read(&mut f, "time://zone/Europe/Paris")[0].0, 0);
    assert_eq!(read(&mut f, "x://unlisted")[0].0, 1, "the only member with resources");
}

#[test]
fn a_members_question_reaches_the_client_under_an_id_of_its_own_and_the_answer_goes_back_under_the_members() {
    let mut f = two_members();
    let asked = f.from_member(
        1,
        msg(json!({"jsonrpc": "2.0", "id": 5, "method": "sampling/createMessage", "params": {}})),
        Some(Id::Num(9)),
    );
    let (ours, related) = match &asked[..] {
        [Action::ToClient { msg, related }] => (msg.id.value().cloned().unwrap(), related.clone()),
        other => panic!("{other:?}"),
    };
    assert_ne!(ours, Id::Num(5), "another member's id 5 must not collide");
    assert_eq!(related, Some(Id::Num(9)), "it stays with the call that caused it");
    let back = to_members(&f.from_client(msg(
        json!({"jsonrpc": "2.0", "id": serde_json::to_value(&ours).unwrap(), "result": {"content": {}}}),
    )));
    assert_eq!(back[0].0, 1);
    assert_eq!(back[0].1.id.value(), Some(&Id::Num(5)));
}

#[test]
fn cancellation_reaches_the_member_handling_the_request_and_nobody_else() {
    let mut f = two_members();
    f.from_client(msg(json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "time__slow"}})));
    let sent =
        to_members(&f.from_client(msg(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11}}),
        )));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 0);
}

#[test]
fn a_member_joining_later_is_initialized_with_the_clients_params_and_announced() {
    let mut f = two_members();
    let (id, actions) = f.add_member("fs", None, member_init(json!({"tools": {}})), true);
    assert_eq!(id, 2);
    assert!(to_members(&actions).iter().any(|(m, msg)| *m == 2 && msg.method() == "initialize"));
    assert!(to_client(&actions).iter().any(|m| m["method"] == "notifications/tools/list_changed"));
}

#[test]
fn ping_and_log_levels_are_answered_by_the_virtual_server_and_levels_reach_every_member() {
    let mut f = two_members();
    assert_eq!(
        to_client(&f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))))[0]["result"],
        json!({})
    );
    let actions = f.from_client(msg(
        json!({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "debug"}}),
    ));
    assert_eq!(to_members(&actions).len(), 2);
    assert_eq!(to_client(&actions)[0]["id"], 2);
    let unknown = to_client(&f.from_client(msg(json!({"jsonrpc": "2.0", "id": 3, "method": "tasks/list"}))));
    assert_eq!(unknown[0]["error"]["code"], code::METHOD_NOT_FOUND);
}

#[test]
fn a_member_with_an_empty_key_shows_its_names_as_they_are_and_prefixed_names_still_reach_the_others() {
    let mut f = Federation::new("team", false, Default::default());
    f.add_member("", None, member_init(json!({"tools": {}})), false);
    f.add_member("b", None, member_init(json!({"tools": {}})), false);
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})));
    let out = answer(&mut f, actions, |_, _, _| tools(&["echo"]));
    let names: Vec<&str> =
        out[0]["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b__echo", "echo"]);
    let to = |f: &mut Federation, name: &str| {
        to_members(
            &f.from_client(msg(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name}}))),
        )[0]
        .0
    };
    assert_eq!(to(&mut f, "echo"), 0);
    assert_eq!(to(&mut f, "b__echo"), 1);
}

#[test]
fn a_uri_no_listing_showed_goes_to_the_only_member_with_resources() {
    let mut f = two_members();
    let sent = to_members(&f.from_client(msg(
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": "test://watched"}}),
    )));
    assert_eq!(sent[0].0, 1, "only `everything` declares resources");
    f.add_member("more", None, member_init(json!({"resources": {}})), false);
    // Two could serve it: a read asks both, and the one that has it answers.
    let actions = f.from_client(msg(
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "test://nobody"}}),
    ));
    let mut queue = to_members(&actions);
    assert_eq!(queue.len(), 2, "none is guessed: both are asked");
    let (m1, q1) = queue.remove(0);
    let (m2, q2) = queue.remove(0);
    assert!(f.from_member(m1, Message::error_response(q1.id.value().cloned(), -32002, "no"), None).is_empty());
    let out = to_client(&f.from_member(
        m2,
        Message::response(q2.id.value().cloned().unwrap(), raw(&json!({"contents": []}))),
        None,
    ));
    assert_eq!(out[0]["id"], 2, "{out:?}");
    assert!(out[0]["result"]["contents"].is_array());
    // A subscription is not probed: with two that could serve it, it is refused.
    let out = to_client(&f.from_client(msg(
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/subscribe", "params": {"uri": "test://other"}}),
    )));
    assert_eq!(out[0]["error"]["code"], -32002);
}

#[test]
fn what_one_session_listed_routes_the_reads_of_another_of_the_same_virtual_server() {
    let routes: Arc<std::sync::Mutex<Routes>> = Default::default();
    let session = |routes: &Arc<std::sync::Mutex<Routes>>| {
        let mut f = Federation::new("team", true, routes.clone());
        f.add_member("a", None, member_init(json!({"resources": {}})), false);
        f.add_member("b", None, member_init(json!({"resources": {}})), false);
        f
    };
    let mut first = session(&routes);
    let actions = first.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "resources/list"})));
    answer(&mut first, actions, |m, _, _| {
        if m == 1 { json!({"resources": [{"uri": "b://doc", "name": "doc"}]}) } else { json!({"resources": []}) }
    });
    let mut second = session(&routes);
    let sent = to_members(&second.from_client(msg(
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "b://doc"}}),
    )));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 1);
}

#[test]
fn a_members_list_changes_progress_and_logs_reach_the_client_as_they_are() {
    let mut f = two_members();
    for (note, related) in [
        (json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}), None),
        (
            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "p1", "progress": 1}}),
            Some(Id::Num(9)),
        ),
        (json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}), None),
        (json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "test://a"}}), None),
    ] {
        let out = f.from_member(1, msg(note.clone()), related.clone());
        match &out[..] {
            [Action::ToClient { msg, related: r }] => {
                assert_eq!(serde_json::from_str::<Value>(&msg.to_text()).unwrap(), note);
                assert_eq!(r, &related, "it stays with the request it reports on");
            }
            other => panic!("{note}: {other:?}"),
        }
    }
}

#[test]
fn the_pages_after_the_first_are_read_from_its_list_until_a_member_says_its_list_changed() {
    let mut f = two_members();
    let many: Vec<String> = (0..150).map(|i| format!("t{i:03}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    let actions = f.from_client(msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})));
    let first = answer(&mut f, actions, |m, _, _| if m == 0 { tools(&names) } else { tools(&[]) });
    let cursor = first[0]["result"]["nextCursor"].clone();
    let next =
        f.from_client(msg(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": cursor}})));
    assert!(to_members(&next).is_empty(), "no member is asked again");
    assert_eq!(to_client(&next)[0]["result"]["tools"].as_array().unwrap().len(), 50);
    f.from_member(0, msg(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})), None);
    let after_change =
        f.from_client(msg(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": cursor}})));
    assert_eq!(to_members(&after_change).len(), 2, "a changed list is gathered again");
}
