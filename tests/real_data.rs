//! The real third-party logs in data/ (see data/SOURCES.md) load cleanly and mine sensibly.

use crate::common::{chains, data, mine_json};

#[test]
fn airline_agent_log_loads_every_row() {
    let json = mine_json(&[
        data("taubench_airline_gpt4o.csv").to_str().unwrap(),
        "--top",
        "0",
    ]);
    assert_eq!(json["input"]["rows"], 1164);
    assert_eq!(json["input"]["skipped"], 0);
    assert_eq!(json["input"]["sessions"], 182);
    assert_eq!(json["input"]["tools"], 14);
    let top = chains(&json);
    // The agent looks the customer up and the reservation, and then goes one of several ways
    // (issue 22): the domain's headline task, cancelling, is the first entry, whole; handing
    // over to a human is another; each says which others share the two lookups.
    let cancel = "get_user_details → get_reservation_details → cancel_reservation";
    let hand_over = "get_user_details → get_reservation_details → transfer_to_human_agents";
    assert_eq!(top[0], cancel, "{top:#?}");
    assert!(top.iter().any(|c| c == hand_over), "{top:#?}");
    let first = &json["patterns"][0]["branch"];
    assert_eq!(
        first["trunk"],
        serde_json::json!(["get_user_details", "get_reservation_details"])
    );
    let siblings: Vec<String> = (first["siblings"].as_array().unwrap().iter())
        .map(|s| crate::common::chain_text(&s["pattern"]))
        .collect();
    assert!(siblings.contains(&hand_over.to_string()), "{siblings:?}");
}

#[test]
fn helpdesk_process_log_loads_every_row() {
    let json = mine_json(&[data("helpdesk.csv").to_str().unwrap(), "--top", "0"]);
    assert_eq!(json["input"]["rows"], 21348);
    assert_eq!(json["input"]["skipped"], 0);
    assert_eq!(json["input"]["sessions"], 4580);
    assert_eq!(json["input"]["tools"], 14);
    let top = chains(&json);
    // Nearly every ticket follows the main path: it is the first entry, whole, not "Resolve
    // ticket → Closed" (its last two steps, which more tickets share).
    assert_eq!(
        top[0], "Assign seriousness → Take in charge ticket → Resolve ticket → Closed",
        "{top:#?}"
    );
}
