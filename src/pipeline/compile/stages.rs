//! Steps to stages (spec §6.1): without any `depends_on`, one stage per step in file order;
//! with any (even `depends_on: []`), a DAG grouped into levels, each level one stage sorted by
//! file position. Unknown dependencies and cycles are errors. Pure.

use std::collections::{BTreeMap, BTreeSet};

/// A step's name and its dependencies (`None`: no `depends_on` key).
pub struct Node<'a> {
    pub name: &'a str,
    pub depends_on: Option<&'a [String]>,
    pub line: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StageError {
    /// (step, its line, the missing dependency)
    Unknown(String, usize, String),
    /// The steps on a cycle, in order, and the first one's line.
    Cycle(Vec<String>, usize),
}

/// Indices of `nodes` per stage.
pub fn stages(nodes: &[Node<'_>]) -> Result<Vec<Vec<usize>>, StageError> {
    if nodes.iter().all(|n| n.depends_on.is_none()) {
        return Ok((0..nodes.len()).map(|i| vec![i]).collect());
    }
    let index: BTreeMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name, i)).collect();
    let mut deps: Vec<BTreeSet<usize>> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let mut set = BTreeSet::new();
        for d in n.depends_on.unwrap_or_default() {
            let Some(&i) = index.get(d.as_str()) else {
                return Err(StageError::Unknown(n.name.to_owned(), n.line, d.clone()));
            };
            set.insert(i);
        }
        deps.push(set);
    }
    let mut level: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut done = 0;
    let mut current = 0;
    while done < nodes.len() {
        let ready: Vec<usize> = (0..nodes.len())
            .filter(|&i| level[i].is_none() && deps[i].iter().all(|&d| level[d].is_some_and(|l| l < current)))
            .collect();
        if ready.is_empty() {
            return Err(cycle(nodes, &deps, &level));
        }
        for &i in &ready {
            level[i] = Some(current);
        }
        done += ready.len();
        current += 1;
    }
    let mut out = vec![Vec::new(); current];
    for (i, l) in level.iter().enumerate() {
        out[l.unwrap_or(0)].push(i);
    }
    Ok(out)
}

/// Names one cycle among the unplaced steps.
fn cycle(nodes: &[Node<'_>], deps: &[BTreeSet<usize>], level: &[Option<usize>]) -> StageError {
    let start = (0..nodes.len()).find(|&i| level[i].is_none()).unwrap_or(0);
    let mut path = vec![start];
    let mut at = start;
    while let Some(&next) = deps[at].iter().find(|&&d| level[d].is_none()) {
        if let Some(pos) = path.iter().position(|&p| p == next) {
            path.drain(..pos);
            break;
        }
        path.push(next);
        at = next;
    }
    let mut names: Vec<String> = path.iter().map(|&i| nodes[i].name.to_owned()).collect();
    names.push(names[0].clone());
    StageError::Cycle(names, nodes[path[0]].line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sequential_without_depends_on() {
        let nodes = [
            Node {
                name: "a",
                depends_on: None,
                line: 1,
            },
            Node {
                name: "b",
                depends_on: None,
                line: 2,
            },
        ];
        assert_eq!(stages(&nodes), Ok(vec![vec![0], vec![1]]));
    }

    #[test]
    fn dag_levels() {
        let (b, c, d) = (deps(&["a"]), deps(&["a"]), deps(&["b", "c"]));
        let empty = deps(&[]);
        let nodes = [
            Node {
                name: "a",
                depends_on: None,
                line: 1,
            },
            Node {
                name: "b",
                depends_on: Some(&b),
                line: 2,
            },
            Node {
                name: "c",
                depends_on: Some(&c),
                line: 3,
            },
            Node {
                name: "d",
                depends_on: Some(&d),
                line: 4,
            },
            Node {
                name: "e",
                depends_on: Some(&empty),
                line: 5,
            },
        ];
        assert_eq!(stages(&nodes), Ok(vec![vec![0, 4], vec![1, 2], vec![3]]));
    }

    #[test]
    fn cycles_and_unknowns() {
        let (a, b, c) = (deps(&["c"]), deps(&["a"]), deps(&["b"]));
        let nodes = [
            Node {
                name: "a",
                depends_on: Some(&a),
                line: 1,
            },
            Node {
                name: "b",
                depends_on: Some(&b),
                line: 2,
            },
            Node {
                name: "c",
                depends_on: Some(&c),
                line: 3,
            },
        ];
        assert_eq!(stages(&nodes), Err(StageError::Cycle(deps(&["a", "c", "b", "a"]), 1)));
        let x = deps(&["nope"]);
        let nodes = [Node {
            name: "a",
            depends_on: Some(&x),
            line: 7,
        }];
        assert_eq!(stages(&nodes), Err(StageError::Unknown("a".into(), 7, "nope".into())));
    }
}
