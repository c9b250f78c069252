//! Reading values out of JSON records, shared by the JSON, transcript, trace and XES readers.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::calls::BAD_TIME;
use super::values::{Stamp, float_stamp, int_stamp, parse_timestamp, trim};

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
/// kept it apart from values) or any other value. A string is always held as text, however it
/// was read ([`Json::str`], or `From<&Value>`), so the readers below see one form of it.
#[derive(Debug, Clone, Copy)]
pub struct Json<'a>(Repr<'a>);

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Str(&'a str),
    /// Never a string.
    Other(&'a Value),
}

impl<'a> From<&'a Value> for Json<'a> {
    fn from(v: &'a Value) -> Json<'a> {
        match v {
            Value::String(s) => Json::str(s),
            v => Json(Repr::Other(v)),
        }
    }
}

impl<'a> Json<'a> {
    pub fn str(s: &'a str) -> Json<'a> {
        Json(Repr::Str(s))
    }

    pub fn is_null(self) -> bool {
        matches!(self.0, Repr::Other(Value::Null))
    }

    /// The value, when it is a boolean.
    pub fn as_bool(self) -> Option<bool> {
        match self.0 {
            Repr::Other(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// The text, when the value is a string.
    pub fn as_str(self) -> Option<&'a str> {
        match self.0 {
            Repr::Str(s) => Some(s),
            Repr::Other(_) => None,
        }
    }

    /// A scalar as text; `None` for null and for objects and arrays.
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self.0 {
            Repr::Str(s) => Some(Cow::Borrowed(s)),
            Repr::Other(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            Repr::Other(Value::Bool(b)) => Some(Cow::Owned(b.to_string())),
            Repr::Other(_) => None,
        }
    }

    /// The value as the text of a bad value: a string as it is, anything else as JSON.
    pub fn raw(self) -> String {
        match self.0 {
            Repr::Str(s) => s.to_owned(),
            Repr::Other(v) => v.to_string(),
        }
    }

    /// A payload (arguments, result) as JSON text: objects and arrays as they are, a string as
    /// its content; `None` for null and blank text.
    pub fn payload(self) -> Option<Cow<'a, str>> {
        match self.0 {
            Repr::Str(s) => Some(trim(s)).filter(|s| !s.is_empty()).map(Cow::Borrowed),
            Repr::Other(Value::Null) => None,
            Repr::Other(v) => Some(Cow::Owned(v.to_string())),
        }
    }

    /// A timestamp: ISO text or a number of (milli-, micro-, nano)seconds; `BAD_TIME`
    /// otherwise.
    pub fn time(self) -> i64 {
        let stamp = match self.0 {
            Repr::Str(s) => parse_timestamp(s),
            Repr::Other(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(int_stamp(i)),
                None => n.as_f64().and_then(float_stamp),
            },
            Repr::Other(_) => None,
        };
        match stamp {
            Some(Stamp::Time(t) | Stamp::Order(t)) => t,
            None => BAD_TIME,
        }
    }

    /// A number, or a number written as text.
    pub fn number(self) -> Option<f64> {
        match self.0 {
            Repr::Str(s) => trim(s).parse().ok(),
            Repr::Other(Value::Number(n)) => n.as_f64(),
            Repr::Other(_) => None,
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
