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

/// A JSON value as read: a string (borrowed from the text it was read from, when a reader
/// kept it apart from values) or any other value. The readers below take either.
#[derive(Debug, Clone, Copy)]
pub enum Json<'a> {
    Str(&'a str),
    Other(&'a Value),
}

impl<'a> From<&'a Value> for Json<'a> {
    fn from(v: &'a Value) -> Json<'a> {
        match v {
            Value::String(s) => Json::Str(s),
            v => Json::Other(v),
        }
    }
}

impl<'a> Json<'a> {
    /// A string as `Str` however it was read.
    fn plain(self) -> Json<'a> {
        match self {
            Json::Other(v) => Json::from(v),
            str => str,
        }
    }

    pub fn is_null(self) -> bool {
        matches!(self, Json::Other(Value::Null))
    }

    /// A scalar as text; `None` for null and for objects and arrays.
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self.plain() {
            Json::Str(s) => Some(Cow::Borrowed(s)),
            Json::Other(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            Json::Other(Value::Bool(b)) => Some(Cow::Owned(b.to_string())),
            Json::Other(_) => None,
        }
    }

    /// The value as the text of a bad value: a string as it is, anything else as JSON.
    pub fn raw(self) -> String {
        match self.plain() {
            Json::Str(s) => s.to_owned(),
            Json::Other(v) => v.to_string(),
        }
    }

    /// A payload (arguments, result) as JSON text: objects and arrays as they are, a string as
    /// its content; `None` for null and blank text.
    pub fn payload(self) -> Option<Cow<'a, str>> {
        match self.plain() {
            Json::Str(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(Cow::Borrowed),
            Json::Other(Value::Null) => None,
            Json::Other(v) => Some(Cow::Owned(v.to_string())),
        }
    }

    /// A timestamp: ISO text or a number of (milli-, micro-, nano)seconds; `BAD_TIME`
    /// otherwise.
    pub fn time(self) -> i64 {
        let stamp = match self.plain() {
            Json::Str(s) => parse_timestamp(s),
            Json::Other(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(int_stamp(i)),
                None => n.as_f64().and_then(float_stamp),
            },
            Json::Other(_) => None,
        };
        match stamp {
            Some(Stamp::Time(t) | Stamp::Order(t)) => t,
            None => BAD_TIME,
        }
    }

    /// A number, or a number written as text.
    pub fn number(self) -> Option<f64> {
        match self.plain() {
            Json::Str(s) => s.trim().parse().ok(),
            Json::Other(Value::Number(n)) => n.as_f64(),
            Json::Other(_) => None,
        }
    }
}

/// A scalar as text; `None` for null and for objects and arrays.
pub fn text(v: &Value) -> Option<Cow<'_, str>> {
    Json::from(v).text()
}

/// A payload (arguments, result) as JSON text ([`Json::payload`]).
pub fn payload(v: &Value) -> Option<Box<str>> {
    Json::from(v).payload().map(Box::from)
}

/// A timestamp ([`Json::time`]); `BAD_TIME` when there is none.
pub fn time(v: Option<&Value>) -> i64 {
    v.map_or(BAD_TIME, |v| Json::from(v).time())
}

/// A number, or a number written as text.
pub fn number(v: Option<&Value>) -> Option<f64> {
    Json::from(v?).number()
}
