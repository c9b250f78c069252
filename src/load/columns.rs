//! Which column of a file holds which field: the aliases of DESIGN.md, or the user's flags.

use super::error::LoadError;

/// A field of the canonical log schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Session,
    Timestamp,
    Tool,
    Success,
    Duration,
    Arguments,
    Result,
    /// The task outcome of the call's session.
    Outcome,
    /// The tokens of the model turn that issued the call.
    Tokens,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Session,
        Field::Timestamp,
        Field::Tool,
        Field::Success,
        Field::Duration,
        Field::Arguments,
        Field::Result,
        Field::Outcome,
        Field::Tokens,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Session => "session_id",
            Field::Timestamp => "timestamp",
            Field::Tool => "tool",
            Field::Success => "success",
            Field::Duration => "duration_ms",
            Field::Arguments => "arguments",
            Field::Result => "result",
            Field::Outcome => "outcome",
            Field::Tokens => "tokens",
        }
    }

    pub(super) fn flag(self) -> &'static str {
        match self {
            Field::Session => "--session-col",
            Field::Timestamp => "--timestamp-col",
            Field::Tool => "--tool-col",
            Field::Success => "--success-col",
            Field::Duration => "--duration-col",
            Field::Arguments => "--arguments-col",
            Field::Result => "--result-col",
            Field::Outcome => "--outcome-col",
            Field::Tokens => "--tokens-col",
        }
    }

    /// Names recognised without a flag, the canonical one first, in order of preference.
    pub(super) fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Session => &[
                "session_id",
                "session",
                "request_id",
                "trace_id",
                "conversation_id",
                "case_id",
                "case:concept:name",
            ],
            Field::Timestamp => &["timestamp", "ts", "time", "start_time", "time:timestamp"],
            Field::Tool => &[
                "tool",
                "tool_name",
                "name",
                "activity",
                "gen_ai.tool.name",
                "concept:name",
            ],
            Field::Success => &["success", "ok", "status", "error"],
            Field::Duration => &["duration_ms", "duration", "latency_ms"],
            Field::Arguments => &["arguments", "args", "params", "input"],
            Field::Result => &["result", "output"],
            Field::Outcome => &["outcome", "reward", "resolved", "task_success", "solved"],
            Field::Tokens => &["tokens", "total_tokens", "gen_ai.usage.total_tokens"],
        }
    }
}

/// The column of `found` (the columns of the file at `path`) for `field`: the one `given` names,
/// which must exist exactly; otherwise the first alias present, matched exactly, else ignoring
/// case.
pub fn find(
    path: &str,
    found: &[String],
    field: Field,
    given: &Option<String>,
) -> Result<Option<String>, LoadError> {
    if let Some(name) = given {
        return match found.iter().any(|c| c == name) {
            true => Ok(Some(name.clone())),
            false => Err(LoadError::NoSuchColumn {
                path: path.to_string(),
                flag: field.flag(),
                name: name.clone(),
                found: found.join(", "),
            }),
        };
    }
    let exact = field
        .aliases()
        .iter()
        .find(|a| found.iter().any(|c| c == *a));
    let loose = || {
        field
            .aliases()
            .iter()
            .find_map(|a| found.iter().find(|c| c.eq_ignore_ascii_case(a)))
    };
    Ok(exact.map(|a| a.to_string()).or_else(|| loose().cloned()))
}

/// Column names given by flags; `None` means detect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnNames {
    pub session: Option<String>,
    pub timestamp: Option<String>,
    pub tool: Option<String>,
    pub success: Option<String>,
    pub duration: Option<String>,
    pub arguments: Option<String>,
    pub result: Option<String>,
    pub outcome: Option<String>,
    pub tokens: Option<String>,
    /// The outcomes are read from a file of their own (`--outcomes`): the log's columns are not
    /// searched for one.
    pub outcome_elsewhere: bool,
}

/// How the success column is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuccessColumn {
    /// true/false, 1/0, yes/no, ok/success/error/failed.
    Flag(String),
    /// An error message: empty means the call succeeded.
    Error(String),
}

/// The columns of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub session: String,
    pub timestamp: String,
    pub tool: String,
    pub success: Option<SuccessColumn>,
    /// Milliseconds each call took.
    pub duration: Option<String>,
    /// JSON text of each call's arguments and result.
    pub arguments: Option<String>,
    pub result: Option<String>,
    /// The task outcome of the row's session.
    pub outcome: Option<String>,
    /// The tokens of the model turn that issued each call.
    pub tokens: Option<String>,
}

impl Mapping {
    /// The fields of calls assembled from a transcript or trace, by their canonical names.
    pub fn of_calls() -> Mapping {
        Mapping {
            session: Field::Session.name().into(),
            timestamp: Field::Timestamp.name().into(),
            tool: Field::Tool.name().into(),
            success: Some(SuccessColumn::Flag(Field::Success.name().into())),
            duration: Some(Field::Duration.name().into()),
            arguments: Some(Field::Arguments.name().into()),
            result: Some(Field::Result.name().into()),
            outcome: None,
            tokens: None,
        }
    }

    /// The file's name for `field`; `""` for a success column the file does not have.
    pub fn column(&self, field: Field) -> &str {
        match field {
            Field::Session => &self.session,
            Field::Timestamp => &self.timestamp,
            Field::Tool => &self.tool,
            Field::Success => match &self.success {
                Some(SuccessColumn::Flag(c) | SuccessColumn::Error(c)) => c,
                None => "",
            },
            Field::Duration => self.duration.as_deref().unwrap_or(""),
            Field::Arguments => self.arguments.as_deref().unwrap_or(""),
            Field::Result => self.result.as_deref().unwrap_or(""),
            Field::Outcome => self.outcome.as_deref().unwrap_or(""),
            Field::Tokens => self.tokens.as_deref().unwrap_or(""),
        }
    }

    /// Finds the columns among `found` (see [`find`]).
    pub fn detect(path: &str, found: &[String], given: &ColumnNames) -> Result<Mapping, LoadError> {
        let pick = |field: Field, given: &Option<String>| find(path, found, field, given);
        let required = |field: Field, given: &Option<String>| -> Result<String, LoadError> {
            pick(field, given)?.ok_or_else(|| LoadError::MissingColumn {
                path: path.to_string(),
                field: field.name(),
                aliases: field.aliases().join(", "),
                found: if found.is_empty() {
                    "no columns".into()
                } else {
                    found.join(", ")
                },
                flag: field.flag(),
            })
        };
        // Every problem at once: a user fixing a file should not find them one run at a time.
        let mut problems = Vec::new();
        let mut keep = |r: Result<Option<String>, LoadError>| match r {
            Ok(name) => name,
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let session = keep(required(Field::Session, &given.session).map(Some));
        let timestamp = keep(required(Field::Timestamp, &given.timestamp).map(Some));
        let tool = keep(required(Field::Tool, &given.tool).map(Some));
        let success = keep(pick(Field::Success, &given.success));
        let duration = keep(pick(Field::Duration, &given.duration));
        let arguments = keep(pick(Field::Arguments, &given.arguments));
        let result = keep(pick(Field::Result, &given.result));
        let outcome = match given.outcome_elsewhere {
            true => None,
            false => keep(pick(Field::Outcome, &given.outcome)),
        };
        let tokens = keep(pick(Field::Tokens, &given.tokens));
        let (Some(session), Some(timestamp), Some(tool), true) =
            (session, timestamp, tool, problems.is_empty())
        else {
            return Err(match problems.len() {
                1 => problems.remove(0),
                _ => LoadError::Columns { problems },
            });
        };
        Ok(Mapping {
            session,
            timestamp,
            tool,
            success: success.map(|name| match name.eq_ignore_ascii_case("error") {
                true => SuccessColumn::Error(name),
                false => SuccessColumn::Flag(name),
            }),
            duration,
            arguments,
            result,
            outcome,
            tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn xes_names_are_recognised() {
        let found = names(&[
            "case:concept:name",
            "concept:name",
            "time:timestamp",
            "org:resource",
        ]);
        let m = Mapping::detect("x.csv", &found, &ColumnNames::default()).unwrap();
        assert_eq!(m.session, "case:concept:name");
        assert_eq!(m.tool, "concept:name");
        assert_eq!(m.timestamp, "time:timestamp");
        assert_eq!(m.success, None);
    }

    #[test]
    fn canonical_name_wins_over_alias_and_case_is_ignored_last() {
        let found = names(&["Name", "tool", "TS", "Session_ID", "error"]);
        let m = Mapping::detect("x.csv", &found, &ColumnNames::default()).unwrap();
        assert_eq!(m.tool, "tool");
        assert_eq!(m.timestamp, "TS");
        assert_eq!(m.session, "Session_ID");
        assert_eq!(m.success, Some(SuccessColumn::Error("error".into())));
    }

    #[test]
    fn missing_and_unknown_columns_name_the_flag() {
        let found = names(&["a", "b"]);
        let err = Mapping::detect("x.csv", &found, &ColumnNames::default()).unwrap_err();
        assert!(err.to_string().contains("--session-col"), "{err}");
        let given = ColumnNames {
            tool: Some("nope".into()),
            ..Default::default()
        };
        let err = Mapping::detect("x.csv", &names(&["session", "ts", "tool"]), &given).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.csv: no column 'nope' (given by --tool-col); the file has: session, ts, tool"
        );
    }
}
