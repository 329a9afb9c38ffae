//! A minimal MCP client over streamable HTTP, on std's TcpStream: one keep-alive connection
//! per session, replies read as server-sent events. Small enough to see what goes over the
//! wire, and shared by the HTTP tests and the HTTP benchmark.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

/// The initialize request every session starts with.
pub(crate) const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

/// One HTTP response.
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The status line and headers.
    pub(crate) head: String,
    /// The body, with any chunked encoding removed.
    pub(crate) body: String,
}

/// A keep-alive HTTP/1.1 connection to the server's `/mcp`.
pub(crate) struct Connection {
    port: u16,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to the server on `port` at 127.0.0.1.
    pub(crate) fn open(port: u16) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            port,
            reader: BufReader::new(stream),
        })
    }

    /// POSTs `body` with `headers` and reads the whole response.
    pub(crate) fn post(
        &mut self,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Response> {
        self.request("POST", headers, body)
    }

    /// Sends a `method` request to /mcp with `headers` and `body`, and reads the whole
    /// response.
    pub(crate) fn request(
        &mut self,
        method: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Response> {
        let mut request = format!(
            "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.reader.get_mut().write_all(request.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<Response> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_ascii_lowercase())
            })
        };
        let mut body = Vec::new();
        if status == 204 || status == 304 || (100..200).contains(&status) {
            // These statuses never have a body (RFC 9110 §6.4.1), and hyper sends no length
            // for them: reading to the end would wait for the keep-alive connection to close.
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size)?;
                let size = size.trim().split(';').next().unwrap_or("0");
                let size = usize::from_str_radix(size, 16)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                if size == 0 {
                    // Trailers, if any, end with an empty line.
                    loop {
                        let mut line = String::new();
                        if self.reader.read_line(&mut line)? == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                let mut crlf = [0; 2];
                self.reader.read_exact(&mut crlf)?;
            }
        } else if let Some(length) = header("content-length").and_then(|v| v.parse().ok()) {
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        } else {
            self.reader.read_to_end(&mut body)?;
        }
        Ok(Response {
            status,
            head,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// One MCP session.
pub(crate) struct Session {
    connection: Connection,
    id: String,
    authorization: Option<String>,
    next_id: u64,
}

impl Session {
    /// Initializes a session on the server at `port`, with `token` as the bearer token when
    /// given. An error carries the HTTP status and body.
    pub(crate) fn open(port: u16, token: Option<&str>) -> Result<Session, String> {
        let mut connection = Connection::open(port).map_err(|e| e.to_string())?;
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(authorization) = &authorization {
            headers.push(("Authorization", authorization.as_str()));
        }
        let response = connection
            .post(&headers, INITIALIZE)
            .map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!(
                "initialize: HTTP {}: {}",
                response.status, response.body
            ));
        }
        let id = response
            .head
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.eq_ignore_ascii_case("mcp-session-id")
                    .then(|| value.trim().to_owned())
            })
            .ok_or("no session id")?;
        let mut session = Session {
            connection,
            id,
            authorization,
            next_id: 2,
        };
        session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(session)
    }

    /// The session's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Sends a `method` request with the session's headers and `body`; the response as it
    /// came, whatever its status.
    pub(crate) fn exchange(&mut self, method: &str, body: &str) -> Result<Response, String> {
        let mut headers = vec![
            ("Mcp-Session-Id", self.id.as_str()),
            ("Mcp-Protocol-Version", "2025-11-25"),
        ];
        if let Some(authorization) = &self.authorization {
            headers.push(("Authorization", authorization.as_str()));
        }
        self.connection
            .request(method, &headers, body)
            .map_err(|e| e.to_string())
    }

    fn send(&mut self, message: &Value) -> Result<String, String> {
        let response = self.exchange("POST", &message.to_string())?;
        if !(200..300).contains(&response.status) {
            return Err(format!("HTTP {}: {}", response.status, response.body));
        }
        Ok(response.body)
    }

    /// Calls `tool`: the structured result, or the text of a tool or protocol error.
    pub(crate) fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let body = self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}))?;
        let reply: Value = body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m["id"] == json!(id))
            .ok_or_else(|| format!("no reply in {body}"))?;
        if let Some(error) = reply.get("error") {
            return Err(format!("protocol error: {error}"));
        }
        let result = &reply["result"];
        if result["isError"] == json!(true) {
            return Err(result["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned());
        }
        Ok(result["structuredContent"].clone())
    }
}
