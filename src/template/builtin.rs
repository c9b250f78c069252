//! The templates that ship inside the binary (the seed's four common workflows).

use super::model::WorkflowTemplate;

const BUILTINS: [&str; 4] = [
    r#"{
  "name": "github_pr_workflow",
  "description": "List open issues, open a PR that fixes the first one, announce it in Slack",
  "steps": [
    {"step_id": "list_issues", "tool_name": "github_list_issues",
     "parameters": {"repo": "{{repo}}", "state": "open", "labels": "{{labels|default:'bug'}}"}},
    {"step_id": "create_pr", "tool_name": "github_create_pr",
     "parameters": {"repo": "{{repo}}", "title": "Fix #{{list_issues.issues[0].number}}: {{list_issues.issues[0].title}}",
                    "body": "Fixes #{{list_issues.issues[0].number}}", "head": "{{branch}}", "base": "main"},
     "depends_on": ["list_issues"], "condition": "{{list_issues.success}} == true", "retry_count": 2, "timeout_seconds": 30},
    {"step_id": "notify", "tool_name": "slack_send_message",
     "parameters": {"channel": "{{channel|default:'#dev'}}", "message": "PR created: {{create_pr.url}}"},
     "depends_on": ["create_pr"], "on_error": "continue"}
  ],
  "metadata": {"source": "builtin", "pattern": ["github_list_issues", "github_create_pr", "slack_send_message"]}
}"#,
    r#"{
  "name": "slack_notification_chain",
  "description": "Post a message, read the thread's replies, post a summary to a second channel",
  "steps": [
    {"step_id": "post", "tool_name": "slack_send_message",
     "parameters": {"channel": "{{channel}}", "message": "{{message}}"}},
    {"step_id": "replies", "tool_name": "slack_get_thread_replies",
     "parameters": {"channel": "{{channel}}", "thread_ts": "{{post.ts}}"}, "depends_on": ["post"], "retry_count": 1},
    {"step_id": "summary", "tool_name": "slack_send_message",
     "parameters": {"channel": "{{summary_channel|default:'#updates'}}",
                    "message": "{{replies.count}} replies to: {{message}}"},
     "depends_on": ["replies"]}
  ],
  "metadata": {"source": "builtin", "pattern": ["slack_send_message", "slack_get_thread_replies", "slack_send_message"]}
}"#,
    r#"{
  "name": "data_pipeline",
  "description": "Fetch data, transform it, store the result, notify the owner",
  "steps": [
    {"step_id": "fetch", "tool_name": "fetch_data", "parameters": {"url": "{{source_url}}"},
     "retry_count": 3, "timeout_seconds": 60},
    {"step_id": "transform", "tool_name": "transform_data",
     "parameters": {"records": "{{fetch.records}}", "schema": "{{schema|default:'default'}}"}, "depends_on": ["fetch"]},
    {"step_id": "store", "tool_name": "store_data",
     "parameters": {"table": "{{table}}", "records": "{{transform.records}}"}, "depends_on": ["transform"],
     "retry_count": 2},
    {"step_id": "notify", "tool_name": "send_notification",
     "parameters": {"to": "{{owner}}", "message": "Stored {{store.count}} records in {{table}}"},
     "depends_on": ["store"], "on_error": "continue"}
  ],
  "metadata": {"source": "builtin", "pattern": ["fetch_data", "transform_data", "store_data", "send_notification"]}
}"#,
    r#"{
  "name": "approval_workflow",
  "description": "Create an item, ask the approver, wait for the decision, record it",
  "steps": [
    {"step_id": "create", "tool_name": "create_item", "parameters": {"title": "{{title}}", "body": "{{body}}"}},
    {"step_id": "ask", "tool_name": "notify_approver",
     "parameters": {"approver": "{{approver}}", "item_id": "{{create.id}}"}, "depends_on": ["create"]},
    {"step_id": "wait", "tool_name": "wait_for_approval",
     "parameters": {"item_id": "{{create.id}}"}, "depends_on": ["ask"], "timeout_seconds": 86400},
    {"step_id": "update", "tool_name": "update_item",
     "parameters": {"item_id": "{{create.id}}", "status": "{{wait.approved ? 'approved' : 'rejected'}}"},
     "depends_on": ["wait"]}
  ],
  "metadata": {"source": "builtin", "pattern": ["create_item", "notify_approver", "wait_for_approval", "update_item"]}
}"#,
];

/// The built-in templates, in a fixed order.
pub fn builtins() -> Vec<WorkflowTemplate> {
    BUILTINS
        .iter()
        .map(|json| serde_json::from_str(json).expect("built-in templates are valid JSON"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{model::Source, validate};
    use super::*;

    #[test]
    fn builtins_are_valid_and_marked() {
        let all = builtins();
        assert_eq!(all.len(), 4);
        for t in &all {
            assert_eq!(validate::problems(t), Vec::<String>::new(), "{}", t.name);
            assert_eq!(t.metadata.source, Source::Builtin);
            assert_eq!(
                t.metadata.pattern,
                t.tools().collect::<Vec<_>>(),
                "{}",
                t.name
            );
        }
    }
}
