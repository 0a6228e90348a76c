//! `Table`: virsh's `vshTable` layout (tools/vsh-table.c), used by `list`, `snapshot-list` and
//! `checkpoint-list`. Knows nothing of domains.

/// A table: a header row and data rows, all with the same number of cells.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|title| safe(title)).collect(), rows: Vec::new() }
    }

    /// Appends a row; it must have one cell per column.
    pub(crate) fn row(&mut self, cells: &[&str]) {
        assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells.iter().map(|cell| safe(cell)).collect());
    }

    /// The text virsh prints: with the header, each cell is one space plus its text, every
    /// column but the last padded to its widest cell plus two, then a line of
    /// Σ(width + 3) dashes. Without it (`-q`), widths come from the data rows alone.
    pub(crate) fn render(&self, with_header: bool) -> String {
        let mut widths = vec![0; self.header.len()];
        let measured = with_header.then_some(&self.header).into_iter().chain(&self.rows);
        for row in measured {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(display_width(cell));
            }
        }
        let mut out = String::new();
        if with_header {
            render_row(&self.header, &widths, &mut out);
            let dashes: usize = widths.iter().map(|width| width + 3).sum();
            out.push_str(&"-".repeat(dashes));
            out.push('\n');
        }
        for row in &self.rows {
            render_row(row, &widths, &mut out);
        }
        out
    }
}

fn render_row(row: &[String], widths: &[usize], out: &mut String) {
    for (index, cell) in row.iter().enumerate() {
        out.push(' ');
        out.push_str(cell);
        if index + 1 < row.len() {
            let padding = widths[index] - display_width(cell) + 2;
            out.push_str(&" ".repeat(padding));
        }
    }
    out.push('\n');
}

/// `vshTableSafeEncode`: control characters become `\xNN` so they cannot break the layout.
fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && u32::from(c) < 0x80 {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Display cells taken by `text`: two for East Asian wide characters, none for combining
/// marks, one otherwise (an approximation of the `wcwidth` virsh uses).
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| {
            let code = u32::from(c);
            if (0x0300..=0x036F).contains(&code) || (0x200B..=0x200F).contains(&code) {
                0
            } else if (0x1100..=0x115F).contains(&code)
                || (0x2E80..=0xA4CF).contains(&code)
                || (0xAC00..=0xD7A3).contains(&code)
                || (0xF900..=0xFAFF).contains(&code)
                || (0xFE30..=0xFE4F).contains(&code)
                || (0xFF00..=0xFF60).contains(&code)
                || (0xFFE0..=0xFFE6).contains(&code)
                || (0x1F300..=0x1FAFF).contains(&code)
                || (0x20000..=0x3FFFD).contains(&code)
            {
                2
            } else {
                1
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_virsh_list() {
        let mut table = Table::new(&["Id", "Name", "State"]);
        table.row(&["1", "test", "running"]);
        table.row(&["-", "alpha", "shut off"]);
        assert_eq!(
            table.render(true),
            " Id   Name    State\n\
             ------------------------\n \
             1    test    running\n \
             -    alpha   shut off\n"
        );
        assert_eq!(table.render(false), " 1   test    running\n -   alpha   shut off\n");
    }

    #[test]
    fn empty_table_has_header_and_dashes_only() {
        let table = Table::new(&["Id", "Name", "State"]);
        assert_eq!(table.render(true), " Id   Name   State\n--------------------\n");
        assert_eq!(table.render(false), "");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut table = Table::new(&["A"]);
        table.row(&["x\ty"]);
        assert_eq!(table.render(false), " x\\x09y\n");
    }
}
