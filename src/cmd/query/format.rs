//! One answer in three forms: an aligned table for people, JSON (an array
//! of objects) and CSV (RFC 4180) for scripts.

use anyhow::Result;
use std::io::Write;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// One value. Times are RFC 3339 UTC text in every format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Int(u64),
    /// A time in ms since the epoch; 0 is "never" (empty / null).
    Time(u64),
    /// A list (JSON array; joined with spaces in a table or CSV).
    List(Vec<String>),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    fn plain(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Time(0) => String::new(),
            Cell::Time(ms) => sysutil::clock::rfc3339_s(*ms),
            Cell::List(v) => v.join(" "),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Text(s) => s.clone().into(),
            Cell::Int(n) => (*n).into(),
            Cell::Time(0) => serde_json::Value::Null,
            Cell::Time(_) => self.plain().into(),
            Cell::List(v) => v.clone().into(),
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Cell::Int(_))
    }
}

/// Columns and rows.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Answer {
    pub fn new(columns: &[&'static str]) -> Answer {
        Answer {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn write(&self, f: Format, out: &mut impl Write) -> Result<()> {
        match f {
            Format::Table => self.table(out),
            Format::Json => {
                let list: Vec<serde_json::Value> = self
                    .rows
                    .iter()
                    .map(|r| {
                        let obj: serde_json::Map<String, serde_json::Value> = self
                            .columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.to_string(), v.json()))
                            .collect();
                        serde_json::Value::Object(obj)
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                Ok(())
            }
            Format::Csv => {
                writeln!(
                    out,
                    "{}",
                    csv_line(self.columns.iter().map(|c| c.to_string()))
                )?;
                for r in &self.rows {
                    writeln!(out, "{}", csv_line(r.iter().map(Cell::plain)))?;
                }
                Ok(())
            }
        }
    }

    fn table(&self, out: &mut impl Write) -> Result<()> {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::plain).collect())
            .collect();
        let mut width: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &cells {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| !self.rows.is_empty() && self.rows.iter().all(|r| r[i].numeric()))
            .collect();
        let line = |vals: Vec<String>| -> String {
            let mut s = String::new();
            for (i, v) in vals.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = width[i] - v.chars().count();
                if numeric[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(v);
                } else {
                    s.push_str(v);
                    if i + 1 < vals.len() {
                        s.push_str(&" ".repeat(pad));
                    }
                }
            }
            s.trim_end().to_string()
        };
        writeln!(
            out,
            "{}",
            line(self.columns.iter().map(|c| c.to_uppercase()).collect())
        )?;
        for r in cells {
            writeln!(out, "{}", line(r))?;
        }
        Ok(())
    }
}

/// One CSV record: a field is quoted when it holds `,`, `"`, CR or LF,
/// with `"` doubled.
fn csv_line(fields: impl Iterator<Item = String>) -> String {
    fields
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Answer {
        let mut a = Answer::new(&["image", "calls", "last_seen"]);
        a.push(vec![Cell::text("a,\"b\""), Cell::Int(5), Cell::Time(0)]);
        a.push(vec![
            Cell::text("nginx:1"),
            Cell::Int(12345),
            Cell::Time(1_700_000_000_000),
        ]);
        a
    }

    fn render(f: Format) -> String {
        let mut v = Vec::new();
        sample().write(f, &mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn three_forms() {
        assert_eq!(
            render(Format::Table),
            "IMAGE    CALLS  LAST_SEEN\n\
             a,\"b\"        5\n\
             nginx:1  12345  2023-11-14T22:13:20Z\n"
        );
        assert_eq!(
            render(Format::Csv),
            "image,calls,last_seen\n\"a,\"\"b\"\"\",5,\nnginx:1,12345,2023-11-14T22:13:20Z\n"
        );
        let j: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(
            j,
            serde_json::json!([
                {"image": "a,\"b\"", "calls": 5, "last_seen": null},
                {"image": "nginx:1", "calls": 12345, "last_seen": "2023-11-14T22:13:20Z"}
            ])
        );
    }
}
