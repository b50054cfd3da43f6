//! The few REST calls of a run (giving reporters orders), as plain HTTP/1.1 over one connection
//! each: a handful of calls do not justify an HTTP client crate.

use crate::error::LoadgenError;
use crate::net::Target;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Answers of more than this are not ours.
const MAX_RESPONSE: usize = 1 << 20;

/// `POST path` with a JSON body and a bearer token; answers the status and the JSON body.
pub async fn post_json(
    target: &Target,
    path: &str,
    token: &str,
    body: &Value,
) -> Result<(u16, Value), LoadgenError> {
    let fail = |detail: String| LoadgenError::Http {
        method: "POST",
        path: path.to_string(),
        detail,
    };
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        host = target.host,
        len = body.len()
    );
    let mut stream = TcpStream::connect(target.server)
        .await
        .map_err(|e| fail(format!("connect to {}: {e}", target.server)))?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| fail(format!("write: {e}")))?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| fail(format!("read: {e}")))?;
    let (status, body) = parse_response(&raw).map_err(fail)?;
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            fail(format!(
                "status {status}, body is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            ))
        })?
    };
    Ok((status, json))
}

/// Splits an HTTP/1.1 response into its status and its body (de-chunked if need be).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in `{}`", head.lines().next().unwrap_or("")))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

/// Joins the chunks of a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line has no end")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size `{size_hex}`"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err("a chunk is cut short".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sized_response_gives_its_status_and_body() {
        let raw = b"HTTP/1.1 201 Created\r\ncontent-length: 11\r\n\r\n{\"id\":\"O\"}\n";
        let (status, body) = parse_response(raw).unwrap();
        assert_eq!(status, 201);
        assert_eq!(body, b"{\"id\":\"O\"}\n");
    }

    #[test]
    fn a_chunked_response_is_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        let (_, body) = parse_response(raw).unwrap();
        assert_eq!(body, b"{\"a\":1}");
    }

    #[test]
    fn a_response_without_headers_end_is_refused() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
