//! Steps to stages, by Woodpecker's DAG compiler: when no kept step has a `depends_on` key,
//! one stage per step in file order; when any has one (even `depends_on: []`), levels of the
//! DAG, each level one stage in file order. In DAG mode two steps may not share a name; an
//! optional dependency that is not among the kept steps is dropped; a required one is an error
//! (naming the step, and whether `when:` filtered the dependency out), as is a cycle. Linear
//! in steps plus dependencies (Kahn's algorithm). Pure.

use std::collections::HashMap;

use crate::pipeline::yaml::Dep;

/// A step's name and its dependencies (`None`: no `depends_on` key).
pub struct StageNode<'a> {
    pub name: &'a str,
    pub depends_on: Option<&'a [Dep]>,
    pub line: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StageError {
    /// (step, its line, the missing dependency)
    Unknown(String, usize, String),
    /// The steps on a cycle, in order, and the first one's line.
    Cycle(Vec<String>, usize),
    /// (name, the second step's line)
    Duplicate(String, usize),
}

/// Indices of `nodes` per stage.
pub fn stages(nodes: &[StageNode<'_>]) -> Result<Vec<Vec<usize>>, StageError> {
    if nodes.iter().all(|n| n.depends_on.is_none()) {
        return Ok((0..nodes.len()).map(|i| vec![i]).collect());
    }
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if index.insert(n.name, i).is_some() {
            return Err(StageError::Duplicate(n.name.to_owned(), n.line));
        }
    }
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let mut list = Vec::new();
        for d in n.depends_on.unwrap_or_default() {
            match index.get(d.name.as_str()) {
                Some(&i) => list.push(i),
                None if d.optional => {}
                None => return Err(StageError::Unknown(n.name.to_owned(), n.line, d.name.clone())),
            }
        }
        list.sort_unstable();
        list.dedup();
        deps.push(list);
    }
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, list) in deps.iter().enumerate() {
        for &d in list {
            dependants[d].push(i);
        }
    }
    let mut level: Vec<usize> = (0..nodes.len()).filter(|&i| waiting[i] == 0).collect();
    let mut out = Vec::new();
    let mut placed = 0;
    while !level.is_empty() {
        placed += level.len();
        let mut next = Vec::new();
        for &i in &level {
            for &j in &dependants[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        out.push(std::mem::replace(&mut level, next));
    }
    if placed < nodes.len() {
        return Err(cycle(nodes, &deps, &waiting));
    }
    Ok(out)
}

/// Names one cycle among the steps that could not be placed.
fn cycle(nodes: &[StageNode<'_>], deps: &[Vec<usize>], waiting: &[usize]) -> StageError {
    let stuck = |i: usize| waiting[i] > 0;
    let start = (0..nodes.len()).find(|&i| stuck(i)).unwrap_or(0);
    let mut path = vec![start];
    let mut on_path = vec![usize::MAX; nodes.len()];
    on_path[start] = 0;
    let mut at = start;
    while let Some(&next) = deps[at].iter().find(|&&d| stuck(d)) {
        if on_path[next] != usize::MAX {
            path.drain(..on_path[next]);
            break;
        }
        on_path[next] = path.len();
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

    fn deps(list: &[&str]) -> Vec<Dep> {
        list.iter().map(|s| Dep::required(s)).collect()
    }

    fn node<'a>(name: &'a str, d: Option<&'a [Dep]>, line: usize) -> StageNode<'a> {
        StageNode {
            name,
            depends_on: d,
            line,
        }
    }

    #[test]
    fn sequential_without_depends_on() {
        let nodes = [node("a", None, 1), node("b", None, 2), node("a", None, 3)];
        assert_eq!(stages(&nodes), Ok(vec![vec![0], vec![1], vec![2]]));
    }

    #[test]
    fn dag_levels() {
        let (b, c, d) = (deps(&["a"]), deps(&["a"]), deps(&["b", "c"]));
        let empty = deps(&[]);
        let nodes = [
            node("a", None, 1),
            node("b", Some(&b), 2),
            node("c", Some(&c), 3),
            node("d", Some(&d), 4),
            node("e", Some(&empty), 5),
        ];
        assert_eq!(stages(&nodes), Ok(vec![vec![0, 4], vec![1, 2], vec![3]]));
    }

    #[test]
    fn optional_missing_dependencies_are_dropped() {
        let d = vec![
            Dep::required("a"),
            Dep {
                name: "lint".into(),
                optional: true,
            },
        ];
        let nodes = [node("a", None, 1), node("deploy", Some(&d), 2)];
        assert_eq!(stages(&nodes), Ok(vec![vec![0], vec![1]]));
    }

    #[test]
    fn cycles_unknowns_and_duplicates() {
        let (a, b, c) = (deps(&["c"]), deps(&["a"]), deps(&["b"]));
        let nodes = [node("a", Some(&a), 1), node("b", Some(&b), 2), node("c", Some(&c), 3)];
        assert_eq!(
            stages(&nodes),
            Err(StageError::Cycle(
                vec!["a".into(), "c".into(), "b".into(), "a".into()],
                1
            ))
        );
        let x = deps(&["nope"]);
        assert_eq!(
            stages(&[node("a", Some(&x), 7)]),
            Err(StageError::Unknown("a".into(), 7, "nope".into()))
        );
        let e = deps(&[]);
        assert_eq!(
            stages(&[node("a", Some(&e), 1), node("a", None, 4)]),
            Err(StageError::Duplicate("a".into(), 4))
        );
    }

    #[test]
    fn a_long_chain_is_linear() {
        let n = 50_000;
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let d: Vec<Vec<Dep>> = (0..n)
            .map(|i| {
                if i == 0 {
                    vec![]
                } else {
                    vec![Dep::required(&names[i - 1])]
                }
            })
            .collect();
        let nodes: Vec<StageNode<'_>> = (0..n).map(|i| node(&names[i], Some(&d[i]), i)).collect();
        let start = std::time::Instant::now();
        assert_eq!(stages(&nodes).unwrap().len(), n);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
