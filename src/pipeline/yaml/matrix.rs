//! `matrix:` to the axes a file expands into, by Woodpecker's `yaml/matrix` rules: a
//! non-empty `include:` list is taken as written; otherwise the product of the named axes with
//! the names sorted (the first name varies slowest), axes without values left out, at most
//! [`LIMIT_TAGS`] + 2 names per item and [`LIMIT_AXIS`] + 2 items (Woodpecker's own limits,
//! off by its two: it checks after appending). Items past the limit are dropped with a warning,
//! never computed: the size of a product is checked before anything is built. Pure.

use std::collections::BTreeMap;

use super::node::Node;
use crate::pipeline::error::PipelineError;

/// Woodpecker's `limitAxis`: it stops after the item whose index passes it (27 items).
pub const LIMIT_AXIS: usize = 25;
/// Woodpecker's `limitTags`: names after the 12th get no value.
pub const LIMIT_TAGS: usize = 10;

/// The axes; one empty map when there is no matrix.
pub fn axes(root: &Node<'_>) -> Result<Vec<BTreeMap<String, String>>, PipelineError> {
    let Some(matrix) = root.get("matrix") else {
        return Ok(vec![BTreeMap::new()]);
    };
    if !matrix.is_map() {
        return Err(matrix.invalid("expected a map of axes (NAME: [values]) or `include:`"));
    }
    if let Some(include) = matrix.get("include")
        && include.is_seq()
    {
        let items = include.items()?;
        if !items.is_empty() {
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                let mut axis = BTreeMap::new();
                for (k, v) in item.entries()? {
                    axis.insert(k, v.string()?);
                }
                out.push(axis);
            }
            return Ok(out);
        }
    }
    let mut tags: Vec<(String, Vec<String>)> = Vec::new();
    for (name, values) in matrix.entries()? {
        if !values.is_seq() && !values.is_null() {
            return Err(values.invalid("expected a list of values"));
        }
        let values = values.string_list()?;
        if !values.is_empty() {
            tags.push((name, values));
        }
    }
    if tags.is_empty() {
        return Ok(vec![BTreeMap::new()]);
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    let perm = tags.iter().fold(1usize, |p, (_, v)| p.saturating_mul(v.len()));
    let count = perm.min(LIMIT_AXIS + 2);
    if perm > count {
        let mut total = perm.to_string();
        if perm == usize::MAX {
            total = "too many".into();
        }
        matrix.warn(format!(
            "the matrix has {total} combinations; Woodpecker runs only the first {count}, and so does exec"
        ));
    }
    // How many items each value of a name spans: the product of the later names' sizes.
    let mut spans = vec![1usize; tags.len()];
    for i in (0..tags.len().saturating_sub(1)).rev() {
        spans[i] = spans[i + 1].saturating_mul(tags[i + 1].1.len());
    }
    let mut out = Vec::with_capacity(count);
    for p in 0..count {
        let mut axis = BTreeMap::new();
        for (i, (tag, elems)) in tags.iter().enumerate() {
            let elem = (p / spans[i]) % elems.len();
            axis.insert(tag.clone(), elems[elem].clone());
            if i > LIMIT_TAGS {
                break;
            }
        }
        out.push(axis);
    }
    Ok(out)
}
