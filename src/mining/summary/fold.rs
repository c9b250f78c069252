//! Folding the workflows that repeat better ones into them, and telling branches which others
//! share their trunk.

use super::*;

/// Tells each workflow that shares a trunk with others (its own, or one that another branch was
/// grown from) which others share it.
pub(super) fn link_branches(kept: &mut [Found]) {
    let mut trunks: Vec<(Vec<u32>, bool)> = (kept.iter())
        .filter(|w| !w.trunk.is_empty())
        .map(|w| (w.trunk_pattern(), w.trunk[0] == 0))
        .collect();
    trunks.sort();
    trunks.dedup();
    // The longest trunk a workflow shares first.
    trunks.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    for (trunk, at_start) in trunks {
        let members: Vec<usize> = (0..kept.len())
            .filter(|&i| {
                let p = kept[i].pattern();
                p.len() > trunk.len()
                    && kept[i].branch.is_none()
                    && match at_start {
                        true => p.starts_with(&trunk),
                        false => p.ends_with(&trunk),
                    }
            })
            .collect();
        if members.len() < 2 {
            continue;
        }
        for &m in &members {
            let siblings = (members.iter())
                .filter(|&&o| o != m)
                .map(|&o| (kept[o].pattern(), kept[o].support))
                .collect();
            kept[m].branch = Some(Branch {
                trunk: trunk.clone(),
                at_start,
                siblings,
            });
        }
    }
}

/// Folds every workflow that repeats a better one (a part of it, it with more steps, or it with
/// one step different) into that one, as a variant; a workflow with more steps than a better one
/// and as much support takes its place. Branches are not repeats: two workflows
/// that share a start (or an end) and then have nothing more in common are both kept, and a
/// trunk (a start of longer workflows) is folded into its best branch, not the branch into it,
/// unless the trunk is commonly the whole run (`continuation` of its sessions do nothing else
/// after it) and as common as that branch: then both are kept.
pub(super) fn fold(found: Vec<Found>, continuation: f64) -> Vec<Found> {
    let chains: Vec<Vec<u32>> = found.iter().map(Found::pattern).collect();
    // Longest first, so that a trunk's branch is decided before the trunk.
    let mut by_length: Vec<usize> = (0..found.len()).collect();
    by_length.sort_by_key(|&i| std::cmp::Reverse(chains[i].len()));
    let mut trunk_of: Vec<Option<usize>> = vec![None; found.len()];
    let mut whole_trunk = vec![false; found.len()];
    for &i in &by_length {
        let branch = (0..found.len()).find(|&j| {
            trunk_of[j].is_none()
                && chains[j].len() > chains[i].len()
                && chains[j].starts_with(&chains[i])
        });
        let Some(j) = branch else { continue };
        let w = &found[i];
        let whole_run = w.ends as f64 >= continuation * w.support as f64;
        match whole_run && w.support >= found[j].support {
            true => whole_trunk[i] = true,
            false => trunk_of[i] = Some(j),
        }
    }
    let mut kept: Vec<(usize, Found)> = Vec::new();
    // Where each workflow went: its index in `kept`.
    let mut home_of: Vec<usize> = vec![usize::MAX; found.len()];
    let mut trunks = Vec::new();
    for (i, w) in found.into_iter().enumerate() {
        if let Some(j) = trunk_of[i] {
            trunks.push((j, w));
            continue;
        }
        let chain = &chains[i];
        let home = kept.iter().position(|(k, _)| {
            // A trunk kept on its own and its branches are different workflows.
            let trunk_pair = (whole_trunk[i] && chains[*k].starts_with(chain))
                || (whole_trunk[*k] && chain.starts_with(&chains[*k]));
            !trunk_pair && repeats(chain, &chains[*k]).is_some()
        });
        match home {
            Some(h) => {
                let kind = repeats(chain, &chains[kept[h].0]).expect("related");
                home_of[i] = h;
                if kind == Relation::Longer && w.support >= kept[h].1.support {
                    // The whole of a workflow found as a part of it first, as common: the
                    // whole is the entry, the part its variant.
                    let (j, part) = std::mem::replace(&mut kept[h], (i, w));
                    add_variant(
                        &mut kept[h].1,
                        chains[j].clone(),
                        Relation::Part,
                        part.support,
                    );
                } else {
                    add_variant(&mut kept[h].1, chain.clone(), kind, w.support);
                }
            }
            None => {
                home_of[i] = kept.len();
                kept.push((i, w));
            }
        }
    }
    for (j, w) in trunks {
        let chain = w.pattern();
        add_variant(&mut kept[home_of[j]].1, chain, Relation::Part, w.support);
    }
    kept.into_iter().map(|(_, w)| w).collect()
}

pub(super) fn add_variant(home: &mut Found, chain: Vec<u32>, kind: Relation, sessions: usize) {
    home.variants.push(Variant {
        change: Change::Related { chain, kind },
        sessions,
    });
    home.variants.sort_by_key(|v| std::cmp::Reverse(v.sessions));
}

/// How `chain` repeats `of`, if it does: as [`relation`], but branches are no repeats: two
/// chains that share a start and then have nothing more in common (or share an end and have
/// nothing in common before it) are different workflows, however many steps they share.
pub(super) fn repeats(chain: &[u32], of: &[u32]) -> Option<Relation> {
    if chain == of {
        return Some(Relation::Part);
    }
    let start = chain.iter().zip(of).take_while(|(a, b)| a == b).count();
    let end = (chain.iter().rev().zip(of.iter().rev()))
        .take_while(|(a, b)| a == b)
        .count();
    let split_after = start > 0 && lcs(&chain[start..], &of[start..]) == 0;
    let split_before = end > 0 && lcs(&chain[..chain.len() - end], &of[..of.len() - end]) == 0;
    if (split_after || split_before) && relation(chain, of) == Some(Relation::OneStepDiffers) {
        return None;
    }
    relation(chain, of)
}

/// How `chain` repeats `of`, if it does.
pub fn relation(chain: &[u32], of: &[u32]) -> Option<Relation> {
    if is_subsequence(chain, of) {
        return Some(Relation::Part);
    }
    if is_subsequence(of, chain) {
        return Some(Relation::Longer);
    }
    // One step replaced, added or left out on either side; not two workflows that share steps.
    let (k, most) = (chain.len().min(of.len()), chain.len().max(of.len()));
    (k >= 3 && lcs(chain, of) + 1 >= most).then_some(Relation::OneStepDiffers)
}

pub(super) fn is_subsequence(small: &[u32], big: &[u32]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|t| rest.any(|b| b == t))
}

/// Length of the longest common subsequence.
pub(super) fn lcs(a: &[u32], b: &[u32]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                diagonal + 1
            } else {
                row[j + 1].max(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}
