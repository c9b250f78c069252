//! The values a step's placeholders can read: the run's variables and the finished steps.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::template::expr::{EvalError, Path, Scope, Segment, walk};

/// What a finished step shows to later steps.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub success: bool,
    /// The result of a step that succeeded.
    pub result: Option<Value>,
    /// Why there is no result (for messages): "skipped: its condition was false", …
    pub why_none: String,
}

/// Variables and step outcomes. `{{step.success}}` is the step's outcome; any other path under
/// a step reads its result; a path whose root is not a step is a variable.
#[derive(Debug, Clone, Default)]
pub struct Context {
    vars: Map<String, Value>,
    step_ids: HashSet<String>,
    outcomes: HashMap<String, Outcome>,
}

impl Context {
    pub fn new(vars: Map<String, Value>, step_ids: impl IntoIterator<Item = String>) -> Context {
        Context {
            vars,
            step_ids: step_ids.into_iter().collect(),
            outcomes: HashMap::new(),
        }
    }

    pub fn is_step(&self, id: &str) -> bool {
        self.step_ids.contains(id)
    }

    pub fn set(&mut self, step_id: &str, outcome: Outcome) {
        self.outcomes.insert(step_id.to_string(), outcome);
    }
}

impl Scope for Context {
    fn resolve(&self, path: &Path) -> Result<Value, EvalError> {
        if self.step_ids.contains(&path.root) {
            let Some(outcome) = self.outcomes.get(&path.root) else {
                return Err(EvalError::Pending(path.root.clone()));
            };
            if let [Segment::Key(k)] = path.segments.as_slice()
                && k == "success"
            {
                return Ok(Value::Bool(outcome.success));
            }
            return match &outcome.result {
                Some(result) => walk(result, path, &path.segments),
                None => Err(EvalError::Missing {
                    path: path.to_string(),
                    reason: format!("step '{}' has no result ({})", path.root, outcome.why_none),
                }),
            };
        }
        match self.vars.get(&path.root) {
            Some(v) => walk(v, path, &path.segments),
            None => Err(EvalError::Missing {
                path: path.to_string(),
                reason: format!("variable '{}' is not set", path.root),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::expr::{Parsed, Text};
    use proptest::prelude::*;
    use serde_json::json;

    /// `value` parsed and rendered in `c`.
    fn render(c: &Context, value: &Value) -> Result<Value, EvalError> {
        Parsed::parse(value).unwrap().render(c)
    }

    fn ctx() -> Context {
        let mut c = Context::new(
            json!({"repo": "acme/app"}).as_object().unwrap().clone(),
            [
                "list".to_string(),
                "later".to_string(),
                "skipped".to_string(),
            ],
        );
        c.set(
            "list",
            Outcome {
                success: true,
                result: Some(json!({"issues": [{"number": 7}], "success": "from the tool"})),
                why_none: String::new(),
            },
        );
        c.set(
            "skipped",
            Outcome {
                success: false,
                result: None,
                why_none: "skipped: its condition was false".into(),
            },
        );
        c
    }

    #[test]
    fn steps_and_variables() {
        let c = ctx();
        let params = json!({"n": "{{list.issues[0].number}}", "t": "PR for {{repo}}", "nested": ["{{list.success}}"]});
        assert_eq!(
            render(&c, &params).unwrap(),
            json!({"n": 7, "t": "PR for acme/app", "nested": [true]})
        );
        assert_eq!(
            render(&c, &json!("{{skipped.success}}")).unwrap(),
            json!(false)
        );
        assert_eq!(
            render(&c, &json!("{{skipped.url}}"))
                .unwrap_err()
                .to_string(),
            "skipped.url: step 'skipped' has no result (skipped: its condition was false)"
        );
        assert_eq!(
            render(&c, &json!("{{later.x}}")).unwrap_err(),
            EvalError::Pending("later".into())
        );
        assert_eq!(
            Parsed::parse(&json!({"a": "{{later.x}}", "b": "x={{later.x}} in {{repo}}"}))
                .unwrap()
                .render_known(&c)
                .unwrap(),
            json!({"a": "{{later.x}}", "b": "x={{later.x}} in acme/app"})
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            // Strings that look like templates: they must come through literally.
            prop::string::string_regex("(\\{\\{|\\}\\}|secret|[a-z.|:'?]| ){0,12}")
                .unwrap()
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z{}]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// A tool's result reaches the next step exactly as it was: a string in it that looks
        /// like a placeholder (`{{secret}}`) is never substituted.
        #[test]
        fn results_pass_through_literally(result in json_value()) {
            let mut c = Context::new(
                json!({"secret": "hunter2"}).as_object().unwrap().clone(),
                ["a".to_string()],
            );
            c.set("a", Outcome { success: true, result: Some(json!({"v": result.clone()})), why_none: String::new() });
            prop_assert_eq!(render(&c, &json!("{{a.v}}")).unwrap(), result.clone());
            let text = render(&c, &json!("<{{a.v}}>")).unwrap();
            let inner = match &result { Value::String(s) => s.clone(), v => v.to_string() };
            prop_assert_eq!(text, json!(format!("<{inner}>")));
        }

        /// Any string is either rejected with an error or rendered; nothing panics.
        #[test]
        fn arbitrary_templates_never_panic(s in "(\\{\\{|\\}\\}|[a-z0-9_.\\[\\]|:'\"?!=<>&() -]){0,30}") {
            let c = ctx();
            if let Ok(t) = Text::parse(&s) {
                let rendered = t.render(&c);
                if t.is_literal() {
                    prop_assert_eq!(rendered.unwrap(), json!(s.clone()));
                }
            }
            if let Ok(cond) = crate::template::expr::Condition::parse(&s) {
                let _ = cond.holds(&c);
            }
        }
    }
}
