//! What `latchkey admin` prints: the API's JSON, or tab-separated tables.

use serde::Serialize;
use serde_json::Value;

/// A table column: its header (the API's field name) and how to read the cell from a row.
pub(crate) type Column<T> = (&'static str, fn(&T) -> String);

/// A missing value reads `-`.
pub(crate) fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

/// A cell as the tables have always shown it: text as it is, anything else as its JSON.
pub(crate) fn cell(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        Ok(Value::Null) => "-".into(),
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}

/// A list cell, as its JSON (`["https://app.example/callback"]`).
pub(crate) fn list(values: &[String]) -> String {
    cell(&values)
}

pub(crate) fn print_rows<T>(rows: &[T], columns: &[Column<T>]) {
    let mut text = columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join("\t");
    text.push('\n');
    for row in rows {
        let cells: Vec<String> = columns.iter().map(|(_, read)| read(row)).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    print_raw(&text);
}

/// A table of JSON objects (the offline token commands print the domain's summaries).
pub(crate) fn print_table(rows: &[Value], columns: &[&str]) {
    let mut text = columns.join("\t");
    text.push('\n');
    for row in rows {
        let cells: Vec<String> = columns.iter().map(|c| cell(&row[*c])).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    print_raw(&text);
}

/// Pretty JSON with its keys in order, as the server's maps have always printed.
pub(crate) fn print_json(value: &impl Serialize) {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    print_raw(&format!(
        "{}\n",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    ));
}

/// Writes a body as the server sent it; a closed pipe (`| head`) is not an error.
pub(crate) fn print_raw(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
