//! One Kafka request rdkafka's safe API lacks: `IncrementalAlterConfigs` (API key 44, version 0).
//!
//! [`super::admin::apply`] fixes config drift with the classic `AlterConfigs` first; brokers that only
//! implement the incremental request (Tansu 0.6) answer `UnsupportedFeature`, and then this module
//! sends the incremental one itself: a size-prefixed request with header v1 over a plain TCP connection
//! to the first bootstrap server (any broker forwards config changes to the controller). Version 0 is
//! the non-flexible encoding, so every field is a fixed-width integer or an `i16`-length string.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_KEY: i16 = 44;
const API_VERSION: i16 = 0;
const RESOURCE_TOPIC: i8 = 2;
const OP_SET: i8 = 0;
/// A larger answer than this is not an IncrementalAlterConfigs response.
const MAX_RESPONSE: usize = 1 << 20;

/// Encodes the request (without the size prefix).
fn encode(
    correlation_id: i32,
    client_id: &str,
    topic: &str,
    configs: &[(&str, String)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as i16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(&API_KEY.to_be_bytes());
    out.extend_from_slice(&API_VERSION.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    string(&mut out, client_id);
    out.extend_from_slice(&1i32.to_be_bytes()); // one resource
    out.push(RESOURCE_TOPIC as u8);
    string(&mut out, topic);
    out.extend_from_slice(&(configs.len() as i32).to_be_bytes());
    for (name, value) in configs {
        string(&mut out, name);
        out.push(OP_SET as u8);
        string(&mut out, value);
    }
    out.push(0); // validate_only = false
    out
}

/// A cursor over a response that fails instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or("truncated response")?;
        self.0 = rest;
        Ok(*head)
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn string(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        if self.0.len() < len {
            return Err("truncated string".into());
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Some(String::from_utf8_lossy(s).into_owned()))
    }
}

/// Decodes the response body after the size prefix: `Ok(())` if the broker applied the change to
/// `topic` — exactly one result, for that topic, without error.
fn decode(correlation_id: i32, topic: &str, body: &[u8]) -> Result<(), String> {
    let mut r = Reader(body);
    if r.i32()? != correlation_id {
        return Err("response to another request".into());
    }
    let _throttle_ms = r.i32()?;
    let count = r.i32()?;
    if count != 1 {
        return Err(format!("{count} results for one resource"));
    }
    let code = r.i16()?;
    let message = r.string()?;
    let _resource_type = r.take::<1>()?;
    let name = r.string()?;
    if code != 0 {
        return Err(format!(
            "error code {code}: {}",
            message.unwrap_or_default()
        ));
    }
    if name.as_deref() != Some(topic) {
        return Err(format!("result for {name:?}, not {topic}"));
    }
    Ok(())
}

/// Sets `configs` on `topic` with `IncrementalAlterConfigs` through the first of `brokers`.
pub async fn incremental_alter_configs(
    brokers: &str,
    client_id: &str,
    topic: &str,
    configs: &[(&str, String)],
    timeout: Duration,
) -> Result<(), String> {
    let addr = brokers.split(',').next().unwrap_or(brokers).trim();
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let request = encode(1, client_id, topic, configs);
        stream
            .write_all(&(request.len() as i32).to_be_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        let size = stream.read_i32().await.map_err(|e| e.to_string())?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_RESPONSE)
            .ok_or("bad response size")?;
        let mut body = vec![0; size];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        decode(1, topic, &body)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{addr}: no answer in {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_laid_out_as_the_protocol_says() {
        let bytes = encode(7, "c", "t", &[("retention.ms", "-1".into())]);
        let expected: Vec<u8> = [
            &[0, 44, 0, 0, 0, 0, 0, 7, 0, 1, b'c'][..], // header: key 44, v0, correlation 7, client "c"
            &[0, 0, 0, 1, 2, 0, 1, b't'],               // one resource: topic "t"
            &[0, 0, 0, 1, 0, 12],                       // one config, name length 12
            b"retention.ms",
            &[0, 0, 2, b'-', b'1', 0], // SET "-1", validate_only false
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn responses_decode_errors_and_never_panic_on_short_input() {
        let ok = [
            &7i32.to_be_bytes()[..],
            &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 255, 255, 2, 0, 1, b't'],
        ]
        .concat();
        assert_eq!(decode(7, "t", &ok), Ok(()));
        assert!(decode(7, "u", &ok).is_err(), "a result for another topic");
        let none = [&7i32.to_be_bytes()[..], &[0, 0, 0, 0, 0, 0, 0, 0]].concat();
        assert!(decode(7, "t", &none).is_err(), "no result is not success");
        let err = [
            &7i32.to_be_bytes()[..],
            &[
                0, 0, 0, 0, 0, 0, 0, 1, 0, 40, 0, 2, b'n', b'o', 2, 0, 1, b't',
            ],
        ]
        .concat();
        assert_eq!(decode(7, "t", &err), Err("error code 40: no".into()));
        for cut in 0..ok.len() {
            assert!(decode(7, "t", &ok[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(8, "t", &ok).is_err());
    }
}
