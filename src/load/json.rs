//! Reading values out of JSON records, shared by the JSON, transcript, trace and XES readers.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::calls::BAD_TIME;
use super::values::{Stamp, float_stamp, int_stamp, parse_timestamp};

/// The value at `path` in `map`: the key itself (keys may contain dots, `gen_ai.tool.name`),
/// else a dotted path into nested objects.
pub fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    path.match_indices('.')
        .find_map(|(i, _)| match map.get(&path[..i]) {
            Some(Value::Object(inner)) => lookup(inner, &path[i + 1..]),
            _ => None,
        })
}

/// A scalar as text; `None` for null and for objects and arrays.
pub fn text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        Value::Null | Value::Object(_) | Value::Array(_) => None,
    }
}

/// A payload (arguments, result) as JSON text: objects and arrays as they are, a string as its
/// content; `None` for null and blank text.
pub fn payload(v: &Value) -> Option<Box<str>> {
    payload_text(v).map(Box::from)
}

/// [`payload`], borrowed where it can be.
pub fn payload_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(Cow::Borrowed),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// A timestamp: ISO text or a number of (milli-, micro-, nano)seconds; `BAD_TIME` otherwise.
pub fn time(v: Option<&Value>) -> i64 {
    let stamp = match v {
        Some(Value::String(s)) => parse_timestamp(s),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(int_stamp(i)),
            None => n.as_f64().and_then(float_stamp),
        },
        _ => None,
    };
    match stamp {
        Some(Stamp::Time(t) | Stamp::Order(t)) => t,
        None => BAD_TIME,
    }
}

/// A number, or a number written as text.
pub fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
