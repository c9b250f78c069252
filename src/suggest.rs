//! `suggest`: which workflows continue a partial chain of tools, and which tools come next.

use std::collections::BTreeSet;

use crate::template::WorkflowTemplate;

/// Tools that follow a chain, each with its share, most frequent first.
pub type NextTools = Vec<(String, f64)>;

/// How a template contains the asked chain, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The template starts with the chain.
    Prefix,
    /// The chain is a run of consecutive steps.
    Contiguous,
    /// The chain's tools appear in order with other steps between.
    Gapped,
}

/// A template that contains the asked chain.
#[derive(Debug, Clone)]
pub struct Suggestion<'a> {
    pub template: &'a WorkflowTemplate,
    pub kind: MatchKind,
    /// Tools of the steps after the last matched one.
    pub remaining: Vec<&'a str>,
}

/// Where `query` occurs in `tools`: the kind and the index of its last matched step.
fn find(tools: &[&str], query: &[String]) -> Option<(MatchKind, usize)> {
    let n = query.len();
    if n == 0 || n > tools.len() {
        return None;
    }
    if tools.iter().zip(query).all(|(t, q)| t == q) {
        return Some((MatchKind::Prefix, n - 1));
    }
    if let Some(start) = tools
        .windows(n)
        .position(|w| w.iter().zip(query).all(|(t, q)| t == q))
    {
        return Some((MatchKind::Contiguous, start + n - 1));
    }
    let mut last = None;
    let mut from = 0;
    for q in query {
        let at = from + tools[from..].iter().position(|t| t == q)?;
        last = Some(at);
        from = at + 1;
    }
    last.map(|end| (MatchKind::Gapped, end))
}

/// The templates that contain `query` in order and are more than the query itself: those that
/// go on after it first, then those that end with it; prefix matches first, then contiguous,
/// then gapped; within a kind by score (descending), then name.
pub fn rank<'a>(templates: &'a [WorkflowTemplate], query: &[String]) -> Vec<Suggestion<'a>> {
    let mut found: Vec<Suggestion> = templates
        .iter()
        .filter_map(|t| {
            let tools: Vec<&str> = t.tools().collect();
            if tools.len() == query.len() {
                // The query itself, or the query in another order: nothing to suggest.
                return None;
            }
            let (kind, end) = find(&tools, query)?;
            Some(Suggestion {
                template: t,
                kind,
                remaining: tools[end + 1..].to_vec(),
            })
        })
        .collect();
    let score = |s: &Suggestion| s.template.metadata.score.unwrap_or(0.0);
    found.sort_by(|a, b| {
        (a.remaining.is_empty().cmp(&b.remaining.is_empty()))
            .then(a.kind.cmp(&b.kind))
            .then(score(b).total_cmp(&score(a)))
            .then_with(|| a.template.name.cmp(&b.template.name))
    });
    found
}

/// The tools that follow `query` directly in the library's templates, each with its share of the
/// sessions of the templates that contain `query` as consecutive steps (weighted by
/// `usage_count`; a template without one counts once). Most frequent first.
pub fn next_tools(templates: &[WorkflowTemplate], query: &[String]) -> NextTools {
    let mut total = 0.0;
    let mut weights: Vec<(String, f64)> = Vec::new();
    for t in templates {
        let tools: Vec<&str> = t.tools().collect();
        let Some((MatchKind::Prefix | MatchKind::Contiguous, end)) = find(&tools, query) else {
            continue;
        };
        let weight = t.metadata.usage_count.unwrap_or(1) as f64;
        total += weight;
        if let Some(next) = tools.get(end + 1) {
            match weights.iter_mut().find(|(tool, _)| tool == next) {
                Some((_, w)) => *w += weight,
                None => weights.push((next.to_string(), weight)),
            }
        }
    }
    let mut shares: Vec<(String, f64)> = weights.into_iter().map(|(t, w)| (t, w / total)).collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    shares
}

/// The known names closest to `unknown` (at most three, by edit distance), for "did you mean".
pub fn did_you_mean<'a>(unknown: &str, known: &BTreeSet<&'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = known
        .iter()
        .map(|k| {
            (
                strsim::levenshtein(&unknown.to_lowercase(), &k.to_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= (k.len().max(unknown.len()) / 3).max(2))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{ChainStats, from_chain};

    fn t(tools: &[&str], score: f64) -> WorkflowTemplate {
        let chain: Vec<String> = tools.iter().map(|s| s.to_string()).collect();
        let stats = ChainStats {
            support: score as u64,
            success_rate: 1.0,
            score,
            ..Default::default()
        };
        from_chain(crate::template::name(&chain), &chain, &stats)
    }

    fn q(tools: &[&str]) -> Vec<String> {
        tools.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefix_beats_contiguous_beats_gapped_whatever_the_score() {
        let all = [
            t(&["x", "a", "b", "c"], 100.0),
            t(&["a", "x", "b"], 500.0),
            t(&["a", "b", "d"], 10.0),
            t(&["b", "a"], 900.0),
        ];
        let found = rank(&all, &q(&["a", "b"]));
        let names: Vec<(&str, MatchKind)> = found
            .iter()
            .map(|s| (s.template.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("a-b-d", MatchKind::Prefix),
                ("x-a-b-c", MatchKind::Contiguous),
                ("a-x-b", MatchKind::Gapped)
            ]
        );
        assert_eq!(found[0].remaining, ["d"]);
        assert_eq!(found[1].remaining, ["c"]);
        assert!(found[2].remaining.is_empty());
    }

    #[test]
    fn the_query_itself_is_never_suggested_and_continuations_come_first() {
        let all = [
            t(&["a", "b"], 900.0),
            t(&["x", "a", "b"], 500.0),
            t(&["a", "x", "b", "c"], 10.0),
        ];
        let found = rank(&all, &q(&["a", "b"]));
        let names: Vec<&str> = found.iter().map(|s| s.template.name.as_str()).collect();
        // a-x-b-c goes on after the chain: first, though gapped and scored lowest; x-a-b ends
        // with it; a-b is the chain itself.
        assert_eq!(names, ["a-x-b-c", "x-a-b"]);
    }

    #[test]
    fn next_tools_are_weighted_by_usage() {
        let all = [
            t(&["a", "b", "c"], 30.0),
            t(&["a", "b", "d"], 10.0),
            t(&["x", "a", "b"], 10.0),
            t(&["a", "x", "b", "e"], 99.0),
        ];
        let next = next_tools(&all, &q(&["a", "b"]));
        assert_eq!(next, [("c".to_string(), 0.6), ("d".to_string(), 0.2)]);
    }

    #[test]
    fn close_names_are_offered() {
        let known: BTreeSet<&str> = [
            "github_list_issues",
            "github_create_pr",
            "slack_send_message",
        ]
        .into();
        assert_eq!(
            did_you_mean("github_list_issue", &known),
            ["github_list_issues"]
        );
        assert_eq!(
            did_you_mean("Github_Create_PR", &known),
            ["github_create_pr"]
        );
        assert!(did_you_mean("weather", &known).is_empty());
    }
}
