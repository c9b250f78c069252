//! XES event logs (IEEE 1849, the process-mining standard): a trace per case, an event per
//! activity with `concept:name`, `time:timestamp` and `lifecycle:transition`. When a log has both
//! `start` and `complete` events, a call is a `complete` event, timed from its `start`.

use std::io::BufReader;

use quick_xml::events::{BytesStart, Event};

use super::agents::{self, Assembled, Call};
use super::calls::{BAD_TIME, Calls};
use super::error::LoadError;
use super::input::{FileSummary, Input, Kind};
use super::json::time;

/// One event as read.
struct XesEvent {
    activity: String,
    time: i64,
    transition: Option<String>,
    success: Option<bool>,
}

/// The `key` and `value` of an attribute element (`<string key=".." value=".."/>`).
fn key_value(e: &BytesStart) -> (String, String) {
    let (mut key, mut value) = (String::new(), String::new());
    for attr in e.attributes().flatten() {
        let text = attr
            .unescape_value()
            .map(|v| v.into_owned())
            .unwrap_or_default();
        match attr.key.as_ref() {
            b"key" => key = text,
            b"value" => value = text,
            _ => {}
        }
    }
    (key, value)
}

/// The traces of an XES document: case id and events, in file order.
fn traces(input: &Input, memory: Option<&[u8]>) -> Result<Vec<(String, Vec<XesEvent>)>, LoadError> {
    let source: Box<dyn std::io::BufRead + '_> = match (memory, input) {
        (Some(bytes), _) => Box::new(bytes),
        (None, Input::File(path) | Input::Found(path)) => Box::new(BufReader::new(
            std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?,
        )),
        (None, Input::Stdin) => unreachable!("standard input is read into memory"),
    };
    let mut reader = quick_xml::Reader::from_reader(source);
    let mut buf = Vec::new();
    let mut out: Vec<(String, Vec<XesEvent>)> = Vec::new();
    // Element depth, and the depths of the open trace and event.
    let (mut depth, mut trace_at, mut event_at) = (0usize, None, None);
    let mut event: Option<XesEvent> = None;
    loop {
        let next = reader
            .read_event_into(&mut buf)
            .map_err(|e| LoadError::Unreadable {
                path: input.to_string(),
                format: "XES",
                message: format!("at byte {}: {e}", reader.error_position()),
            })?;
        let (element, opens) = match &next {
            Event::Start(e) => (Some(e.clone()), true),
            Event::Empty(e) => (Some(e.clone()), false),
            Event::End(_) => {
                if event_at == Some(depth) {
                    let e = event.take().expect("open event");
                    out.last_mut().expect("event inside a trace").1.push(e);
                    event_at = None;
                } else if trace_at == Some(depth) {
                    trace_at = None;
                }
                depth -= 1;
                (None, false)
            }
            Event::Eof => break,
            _ => (None, false),
        };
        if let Some(e) = element {
            if opens {
                depth += 1;
            }
            // Where this element sits: directly in a trace, or directly in an event.
            let level = if opens { depth } else { depth + 1 };
            match e.local_name().as_ref() {
                b"trace" if opens && trace_at.is_none() => {
                    trace_at = Some(depth);
                    out.push((String::new(), Vec::new()));
                }
                b"event" if opens && trace_at.is_some() && event_at.is_none() => {
                    event_at = Some(depth);
                    event = Some(XesEvent {
                        activity: String::new(),
                        time: BAD_TIME,
                        transition: None,
                        success: None,
                    });
                }
                _ if event_at.is_some_and(|d| level == d + 1) => {
                    let (key, value) = key_value(&e);
                    let ev = event.as_mut().expect("open event");
                    match key.as_str() {
                        "concept:name" => ev.activity = value,
                        "time:timestamp" => ev.time = time(Some(&value.into())),
                        "lifecycle:transition" => ev.transition = Some(value.to_lowercase()),
                        "success" | "ok" => ev.success = super::values::parse_success(&value),
                        _ => {}
                    }
                }
                _ if event_at.is_none() && trace_at.is_some_and(|d| level == d + 1) => {
                    let (key, value) = key_value(&e);
                    if key == "concept:name" {
                        out.last_mut().expect("open trace").0 = value;
                    }
                }
                _ => {}
            }
        }
        buf.clear();
    }
    Ok(out)
}

/// Reads an XES log into `calls`.
pub(super) fn read_xes(
    input: &Input,
    memory: Option<&[u8]>,
    calls: &mut Calls,
) -> Result<FileSummary, LoadError> {
    let traces = traces(input, memory)?;
    let has = |t: &str| {
        traces
            .iter()
            .flat_map(|(_, es)| es)
            .any(|e| e.transition.as_deref() == Some(t))
    };
    let paired = has("start") && has("complete");
    let has_success = traces
        .iter()
        .flat_map(|(_, es)| es)
        .any(|e| e.success.is_some());
    let mut assembled = Assembled::default();
    for (case, events) in traces {
        // Starts not yet completed, by activity, oldest first.
        let mut open: Vec<(String, i64, bool)> = Vec::new();
        for (i, e) in events.into_iter().enumerate() {
            let call = |start: i64, end: Option<i64>| Call {
                session: case.clone(),
                tool: e.activity.clone(),
                start,
                bad_time: None,
                end,
                success: Some(e.success.unwrap_or(true)),
                arguments: None,
                result: None,
                at: i + 1,
                id: None,
                turn: None,
            };
            match (paired, e.transition.as_deref()) {
                (false, None | Some("complete")) => assembled.calls.push(call(e.time, None)),
                (false, _) => {}
                (true, Some("start")) => open.push((e.activity.clone(), e.time, false)),
                (true, Some("complete")) => {
                    let start = open
                        .iter_mut()
                        .find(|(a, _, done)| *a == e.activity && !done)
                        .map(|o| {
                            o.2 = true;
                            o.1
                        });
                    let c = match start {
                        Some(s) => call(s, Some(e.time)),
                        None => call(e.time, None),
                    };
                    assembled.calls.push(c);
                }
                (true, _) => {}
            }
        }
        // A start never completed: the call is kept, without a result.
        for (activity, start, _) in open.into_iter().filter(|o| !o.2) {
            assembled.unpaired += 1;
            assembled.calls.push(Call {
                session: case.clone(),
                tool: activity,
                start,
                bad_time: None,
                end: None,
                success: None,
                arguments: None,
                result: None,
                at: 0,
                id: None,
                turn: None,
            });
        }
    }
    let mut summary = FileSummary {
        kind: Kind::Xes,
        is_row: true,
        ..FileSummary::default()
    };
    agents::push(assembled, calls, &mut summary);
    summary.has_success = has_success;
    Ok(summary)
}
