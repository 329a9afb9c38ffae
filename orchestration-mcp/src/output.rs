//! How tool results are written: a one-line summary and compact JSON in the text content, the
//! same JSON as `structuredContent`, and portable JSON schemas.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, JsonObject};
use serde::Serialize;
use serde_json::Value;

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
        let value = serde_json::to_value(&self.value).map_err(|error| {
            tracing::error!(%error, "cannot serialise a tool result");
            ErrorData::internal_error("cannot serialise the result", None)
        })?;
        // Clients that only pass text content to the model still get the data, after the
        // summary line; the JSON is compact.
        let text = format!("{}\n{}", self.summary, value);
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(value);
        Ok(result.into())
    }
}

/// The output schema of `T`, made portable and shallow: the top-level properties with their
/// types and which are always present, nested objects and arrays only as such. Every byte of
/// `tools/list` sits in the model's context, and the model learns a result's shape from the
/// result itself; clients still validate every top-level field.
pub(crate) fn output_schema<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    let mut schema = portable(&rmcp::handler::server::common::schema_for_output::<T>())
        .as_ref()
        .clone();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for property in properties.values_mut() {
            let kind = property
                .get("type")
                .cloned()
                .unwrap_or(Value::String("object".into()));
            let mut shallow = JsonObject::new();
            shallow.insert("type".into(), kind);
            *property = Value::Object(shallow);
        }
    }
    schema.remove("description");
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
            // Bounds that only restate the Rust integer type are noise.
            if object.get("minimum") == Some(&Value::from(0)) {
                object.remove("minimum");
            }
            if matches!(
                object.get("maximum").and_then(Value::as_u64),
                Some(255 | 4_294_967_295)
            ) {
                object.remove("maximum");
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

/// Pagination over a list already in memory.
pub(crate) fn page<T: Clone>(
    items: &[T],
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(Vec<T>, Option<String>), crate::error::ToolFailure> {
    const DEFAULT: usize = 50;
    const MAX: usize = 500;
    let limit = limit.map_or(DEFAULT, |l| l as usize);
    if limit == 0 || limit > MAX {
        return Err(crate::error::ToolFailure::invalid(
            "limit",
            format!("{limit} is outside 1 to {MAX}"),
        ));
    }
    let start = match cursor {
        None => 0,
        Some(cursor) => cursor.parse::<usize>().map_err(|_| {
            crate::error::ToolFailure::invalid(
                "cursor",
                "pass back the next_cursor of the previous page",
            )
        })?,
    };
    let end = (start + limit).min(items.len());
    let slice = items
        .get(start.min(items.len())..end)
        .unwrap_or_default()
        .to_vec();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((slice, next))
}
