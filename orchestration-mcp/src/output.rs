//! How tool results are written: a one-line summary and compact JSON in the text content, the
//! same JSON as `structuredContent`, and portable JSON schemas.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, JsonObject};
use serde::Serialize;
use serde_json::Value;

/// The most a tool result may weigh on the wire: its text content and structured content
/// together. A model's context is finite; no answer may take a large part of it.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// The most the structured content may weigh. The text content repeats it after the summary
/// line (for clients that pass only text to the model), so it gets a little under half.
pub(crate) const MAX_JSON_BYTES: usize = 30 * 1024;

/// Items of each list shown at `detail=summary`.
pub(crate) const SHOWN: usize = 10;

/// Items of each list shown at `detail=full` (or a page's default size).
pub(crate) const SHOWN_FULL: usize = 50;

/// The most a page of a paged list weighs, so that a page of large items stays within the
/// result budget whatever `limit` asked for.
pub(crate) const PAGE_BYTES: usize = 24 * 1024;

/// A tool's result: `value` as structured content, `summary` as the human line.
#[derive(Debug)]
pub(crate) struct Structured<T> {
    pub(crate) summary: String,
    pub(crate) value: T,
}

impl<T> Structured<T> {
    pub(crate) fn new(summary: impl Into<String>, value: T) -> Structured<T> {
        Structured {
            summary: summary.into(),
            value,
        }
    }
}

impl<T: Serialize> IntoCallToolResult for Structured<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let mut value = serde_json::to_value(&self.value).map_err(|error| {
            tracing::error!(%error, "cannot serialise a tool result");
            ErrorData::internal_error("cannot serialise the result", None)
        })?;
        let mut summary = clip(&self.summary, MAX_SUMMARY_BYTES).0;
        // Every tool bounds its own lists and texts well below the budget; this is the last
        // guard, for a result that still came out too large, so that no client ever gets
        // one. It cuts the largest strings and lists first and says so.
        if json_len(&value) > MAX_JSON_BYTES {
            tracing::warn!(
                bytes = json_len(&value),
                "a tool result exceeded its budget and was cut"
            );
            shrink(&mut value, MAX_JSON_BYTES);
            summary.push_str(" (cut to fit the result budget; ask for less)");
        }
        // Clients that only pass text content to the model still get the data, after the
        // summary line; the JSON is compact.
        let text = format!("{summary}\n{value}");
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(value);
        Ok(result.into())
    }
}

/// The longest summary line.
const MAX_SUMMARY_BYTES: usize = 2 * 1024;

/// The length of `value` as compact JSON.
pub(crate) fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len())
}

/// Cuts `value` until it weighs at most `budget` bytes: the longest string is cut in half, or
/// the longest list loses its second half, again and again. Marks the result `cut`.
fn shrink(value: &mut Value, budget: usize) {
    if let Value::Object(object) = value {
        object.insert("cut".into(), Value::Bool(true));
    }
    while json_len(value) > budget {
        if !halve_largest(value) {
            break;
        }
    }
}

/// Halves the largest string or list inside `value`; false when nothing is left to halve.
fn halve_largest(value: &mut Value) -> bool {
    let mut best: Option<(Vec<Step>, usize)> = None;
    find_largest(value, &mut Vec::new(), &mut best);
    let Some((path, _)) = best else {
        return false;
    };
    let mut target = value;
    for step in &path {
        target = match (step, target) {
            (Step::Index(i), Value::Array(items)) => &mut items[*i],
            (Step::Key(key), Value::Object(object)) => match object.get_mut(key) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match target {
        Value::String(text) => {
            *text = clip(text, text.len() / 2).0;
            true
        }
        Value::Array(items) => {
            items.truncate(items.len() / 2);
            true
        }
        _ => false,
    }
}

/// One step into a JSON value.
enum Step {
    Index(usize),
    Key(String),
}

/// The path to, and weight of, the heaviest string or list of more than one item.
fn find_largest(value: &Value, path: &mut Vec<Step>, best: &mut Option<(Vec<Step>, usize)>) {
    let weight = match value {
        Value::String(text) if text.len() > 32 => Some(text.len()),
        Value::Array(items) if items.len() > 1 => Some(json_len(value)),
        _ => None,
    };
    if let Some(weight) = weight
        && best.as_ref().is_none_or(|(_, b)| weight > *b)
    {
        let copy = path
            .iter()
            .map(|step| match step {
                Step::Index(i) => Step::Index(*i),
                Step::Key(k) => Step::Key(k.clone()),
            })
            .collect();
        *best = Some((copy, weight));
    }
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_largest(item, path, best);
                path.pop();
            }
        }
        Value::Object(object) => {
            for (key, child) in object {
                path.push(Step::Key(key.clone()));
                find_largest(child, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` marking the cut, and
/// whether it was cut.
pub(crate) fn clip(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_owned(), false);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}…", &text[..end]), true)
}

/// The bytes `c` takes in a JSON string: escapes included.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `text` cut so that it weighs at most `max` bytes as a JSON string (escapes counted), with
/// `…` marking the cut, and its full weight when it was cut.
pub(crate) fn clip_json(text: &str, max: usize) -> (String, Option<usize>) {
    let full: usize = text.chars().map(escaped_len).sum();
    if full <= max {
        return (text.to_owned(), None);
    }
    let mut used = '…'.len_utf8();
    let mut end = 0;
    for (i, c) in text.char_indices() {
        used += escaped_len(c);
        if used > max {
            break;
        }
        end = i + c.len_utf8();
    }
    (format!("{}…", &text[..end]), Some(full))
}

/// Which lists of a result were cut, and how many items each holds in all. Serialised as
/// `truncated: {"ready": 600}`, and left out when nothing was cut, so a caller sees at once
/// what it did not get.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub(crate) struct Cut(BTreeMap<&'static str, usize>);

impl Cut {
    /// True when no list was cut.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `max` of `items`, noting `field` as cut when there were more.
    pub(crate) fn take<T>(
        &mut self,
        field: &'static str,
        items: impl IntoIterator<Item = T>,
        max: usize,
    ) -> Vec<T> {
        let mut total = 0;
        let mut kept = Vec::new();
        for item in items {
            total += 1;
            if kept.len() < max {
                kept.push(item);
            }
        }
        if total > kept.len() {
            self.0.insert(field, total);
        }
        kept
    }

    /// Notes `field` as cut to fewer than its `total` items.
    pub(crate) fn note(&mut self, field: &'static str, total: usize) {
        self.0.insert(field, total);
    }

    /// The total noted for `field`, if it was cut.
    pub(crate) fn total(&self, field: &str) -> Option<usize> {
        self.0.get(field).copied()
    }
}

/// The output schema of every tool: an object. Every byte of `tools/list` sits in the model's
/// context on every turn, and a result says its own shape; the schema tells a client that
/// results are structured (each one has `structuredContent`), and clients validate that.
pub(crate) fn output_schema() -> Arc<JsonObject> {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), Value::String("object".into()));
    Arc::new(schema)
}

/// Rewrites a generated schema into the subset every MCP client and model provider accepts:
/// references inlined, no `$defs`, no `"type": [T, "null"]`, no `anyOf` with null, no
/// `format` or `default: null`, and unit enums as plain `enum` lists.
pub(crate) fn portable(schema: &JsonObject) -> Arc<JsonObject> {
    let definitions = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut root = Value::Object(schema.clone());
    simplify(&mut root, &definitions, 0);
    match root {
        Value::Object(mut object) => {
            object.remove("$defs");
            object.remove("$schema");
            object.remove("title");
            Arc::new(object)
        }
        _ => Arc::new(schema.clone()),
    }
}

fn simplify(value: &mut Value, definitions: &JsonObject, depth: usize) {
    // Schemas here are shallow; the bound only guards against a recursive type.
    if depth > 32 {
        return;
    }
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(types)) = object.get("type").cloned() {
                let kept: Vec<Value> = types
                    .into_iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .collect();
                if kept.len() == 1 {
                    object.insert("type".into(), kept[0].clone());
                } else {
                    object.insert("type".into(), Value::Array(kept));
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(options)) = object.get(key).cloned() {
                    let kept: Vec<Value> = options
                        .into_iter()
                        .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                        .collect();
                    object.remove(key);
                    if kept.len() == 1
                        && let Value::Object(only) = &kept[0]
                    {
                        for (k, v) in only {
                            object.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    } else if !kept.is_empty() && kept.iter().all(|o| o.get("const").is_some()) {
                        let values: Vec<Value> = kept
                            .iter()
                            .filter_map(|o| o.get("const").cloned())
                            .collect();
                        object.insert("type".into(), Value::String("string".into()));
                        object.insert("enum".into(), Value::Array(values));
                    } else {
                        object.insert(key.into(), Value::Array(kept));
                    }
                }
            }
            // After `anyOf` is flattened, a `$ref` may have surfaced on this object.
            if let Some(Value::String(reference)) = object.get("$ref").cloned()
                && let Some(target) = reference
                    .strip_prefix("#/$defs/")
                    .and_then(|name| definitions.get(name))
            {
                object.remove("$ref");
                if let Value::Object(target) = target {
                    for (key, value) in target {
                        object.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
            if object.get("default") == Some(&Value::Null) {
                object.remove("default");
            }
            // The server rejects unknown fields itself, with a message naming them; saying so
            // in every object of every schema would cost more bytes than it tells a client.
            if object.get("additionalProperties") == Some(&Value::Bool(false)) {
                object.remove("additionalProperties");
            }
            // Bounds that only restate the Rust integer type are noise; a range the field
            // declares is a rule, and stays.
            let type_maximum = matches!(
                object.get("maximum").and_then(Value::as_u64),
                Some(255 | 65_535 | 4_294_967_295)
            );
            if type_maximum {
                object.remove("maximum");
            }
            if !object.contains_key("maximum") && object.get("minimum") == Some(&Value::from(0)) {
                object.remove("minimum");
            }
            object.remove("format");
            object.remove("$schema");
            for child in object.values_mut() {
                simplify(child, definitions, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                simplify(item, definitions, depth + 1);
            }
        }
        _ => {}
    }
}

/// One page of a list already in memory: at most `limit` items (50 by default, 500 at most),
/// and no more than [`PAGE_BYTES`] of them, from `cursor`; the cursor of the next page when
/// items remain.
pub(crate) fn page<T: Clone + Serialize>(
    items: &[T],
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(Vec<T>, Option<String>), crate::error::ToolFailure> {
    page_within(items, limit, cursor, PAGE_BYTES)
}

/// A page as [`page`] makes it, of at most `max_bytes`: for a list that shares its result
/// with other parts.
pub(crate) fn page_within<T: Clone + Serialize>(
    items: &[T],
    limit: Option<u32>,
    cursor: Option<&str>,
    max_bytes: usize,
) -> Result<(Vec<T>, Option<String>), crate::error::ToolFailure> {
    let limit = limit.map_or(SHOWN_FULL, |l| l as usize);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(crate::error::ToolFailure::invalid(
            "limit",
            format!("{limit} is outside 1 to {MAX_LIMIT}"),
        ));
    }
    let start = match cursor {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|&start| start <= items.len())
            .ok_or_else(|| {
                crate::error::ToolFailure::invalid(
                    "cursor",
                    format!(
                        "`{cursor}` is not a cursor of this list; pass back the next_cursor of the previous page"
                    ),
                )
            })?,
    };
    let mut slice = Vec::new();
    let mut bytes = 0;
    for item in items.iter().skip(start).take(limit) {
        let size = serde_json::to_vec(item).map_or(max_bytes, |b| b.len() + 1);
        // One item always fits, however large: each item is bounded on its own, and a page
        // must move the cursor forward.
        if !slice.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        slice.push(item.clone());
    }
    let end = start + slice.len();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((slice, next))
}

/// The largest `limit` a paged list accepts.
pub(crate) const MAX_LIMIT: usize = 500;
