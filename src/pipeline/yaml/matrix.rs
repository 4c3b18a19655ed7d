//! `matrix:` to the list of axis maps a file expands into: the cartesian product of the named
//! axes in file order, or the `include:` list as written. Pure.

use std::collections::BTreeMap;

use super::node::Node;
use crate::pipeline::error::Error;

/// Woodpecker's limit on matrix size.
const MAX_AXES: usize = 25;

/// The axes; one empty map when there is no matrix.
pub fn axes(root: &Node<'_>) -> Result<Vec<BTreeMap<String, String>>, Error> {
    let Some(matrix) = root.get("matrix") else {
        return Ok(vec![BTreeMap::new()]);
    };
    let mut out = vec![BTreeMap::new()];
    if let Some(include) = matrix.get("include") {
        matrix.only_keys(&["include"])?;
        out = include
            .items()?
            .iter()
            .map(|item| item.entries()?.into_iter().map(|(k, v)| Ok((k, v.string()?))).collect())
            .collect::<Result<_, Error>>()?;
    } else {
        for (name, values) in matrix.entries()? {
            let values = values.strings()?;
            let mut next = Vec::with_capacity(out.len() * values.len());
            for axis in &out {
                for v in &values {
                    let mut a = axis.clone();
                    a.insert(name.clone(), v.clone());
                    next.push(a);
                }
            }
            out = next;
        }
    }
    if out.is_empty() {
        return Err(matrix.invalid("the matrix is empty"));
    }
    if out.len() > MAX_AXES {
        return Err(matrix.invalid(format!(
            "the matrix has {} items; at most {MAX_AXES} are allowed",
            out.len()
        )));
    }
    Ok(out)
}
