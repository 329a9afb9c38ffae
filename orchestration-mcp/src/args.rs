//! Tool arguments: decoded from the call's JSON object, with errors that name the field path
//! (`tasks[3].estimate`) so that a model can fix the one value it got wrong.
//!
//! rmcp's own `Parameters` reports serde's message alone ("invalid type: string, expected
//! f64"), which does not say where. The `#[tool]` macro finds the argument type of a tool by
//! the wrapper's name, `Parameters`, so this one takes its place unchanged.

use rmcp::ErrorData;
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// A tool's decoded arguments.
#[derive(Debug)]
pub(crate) struct Parameters<T>(pub(crate) T);

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        decode(serde_json::Value::Object(arguments))
            .map(Parameters)
            // rmcp turns an invalid-params error with this prefix into a tool result with
            // `isError`, which the model reads, rather than a protocol error it never sees.
            .map_err(|message| {
                ErrorData::invalid_params(
                    format!("failed to deserialize parameters: {message}"),
                    None,
                )
            })
    }
}

/// Decodes `value`, or says what is wrong and at which field.
fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut segments: Vec<String> = error.path().iter().map(ToString::to_string).collect();
        let inner = error.into_inner().to_string();
        // An unknown field's path ends with the field itself, which the message names.
        if inner.starts_with("unknown field") {
            segments.pop();
        }
        let path = segments.iter().fold(String::new(), |mut path, segment| {
            if !path.is_empty() && !segment.starts_with('[') {
                path.push('.');
            }
            path.push_str(segment);
            path
        });
        if path.is_empty() {
            inner
        } else {
            format!("at `{path}`: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::decode;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Spec {
        name: String,
        tasks: Vec<Task>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Task {
        key: String,
        estimate: Option<f64>,
    }

    #[test]
    fn errors_name_the_path_of_the_field_at_fault() {
        let cases = [
            (
                json!({"name": "w", "tasks": [{"key": "a"}, {"key": "b", "estimate": "x"}]}),
                "at `tasks[1].estimate`: invalid type: string \"x\", expected f64",
            ),
            (
                json!({"name": "w", "tasks": [{}]}),
                "at `tasks[0]`: missing field `key`",
            ),
            (json!({"tasks": []}), "missing field `name`"),
            (
                json!({"name": "w", "tasks": [], "colour": 1}),
                "unknown field `colour`, expected `name` or `tasks`",
            ),
            (
                json!({"name": "w", "tasks": [{"key": "a", "size": 1}]}),
                "at `tasks[0]`: unknown field `size`, expected `key` or `estimate`",
            ),
        ];
        for (value, expected) in cases {
            let error = decode::<Spec>(value).unwrap_err();
            assert_eq!(error, expected);
        }
    }
}
