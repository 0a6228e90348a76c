//! `tree`: virsh's `vshTreePrint` (tools/vsh.c), the ASCII tree of `snapshot-list --tree`.
//! Knows nothing of snapshots: items are names with the name of their parent, if any.

/// The tree rooted at `items[root]`, as `vshTreePrint` draws it: the root's name, then each
/// child (an item whose parent is that name, in `items`' order) as `+- name` under a `|` line,
/// the branches of all but the last child joined by `|`, and a line of indentation after every
/// last leaf.
pub(crate) fn tree(items: &[(&str, Option<&str>)], root: usize) -> String {
    let mut out = String::new();
    let mut indent = String::new();
    draw(items, root, root, true, &mut indent, &mut out);
    out
}

/// `vshTreePrintInternal`: item `index`, `last` being the index of the last of its siblings.
fn draw(
    items: &[(&str, Option<&str>)],
    index: usize,
    last: usize,
    root: bool,
    indent: &mut String,
    out: &mut String,
) {
    let name = items[index].0;
    out.push_str(indent);
    if !root {
        out.push_str("+- ");
    }
    out.push_str(name);
    out.push('\n');
    if !root {
        indent.push(if index == last { ' ' } else { '|' });
        indent.push(' ');
    }
    let children: Vec<usize> = (0..items.len()).filter(|&i| items[i].1 == Some(name)).collect();
    let leaf = children.is_empty();
    if !leaf {
        out.push_str(indent);
        out.push_str("  |\n");
    }
    indent.push_str("  ");
    if let Some(&last_child) = children.last() {
        for child in children {
            draw(items, child, last_child, false, indent, out);
        }
    }
    indent.truncate(indent.len() - 2);
    if leaf && index == last {
        out.push_str(indent);
        out.push('\n');
    }
    if !root {
        indent.truncate(indent.len() - 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// virsh 9.0's `snapshot-list --tree` of r -> (a -> (a1, a2), b -> bp), names sorted.
    #[test]
    fn draws_like_virsh() {
        let items = [
            ("a", Some("r")),
            ("a1", Some("a")),
            ("a2", Some("a")),
            ("b", Some("r")),
            ("bp", Some("b")),
            ("r", None),
        ];
        assert_eq!(
            tree(&items, 5),
            "r\n  |\n  +- a\n  |   |\n  |   +- a1\n  |   +- a2\n  |     \n  +- b\n      |\n      +- bp\n        \n"
        );
        assert_eq!(tree(&[("bp", None)], 0), "bp\n\n");
    }
}
