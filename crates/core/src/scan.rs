//! Malware scanning of uploaded files, before anything is stored (DESIGN.md "malware
//! protection"). Production deployments point the vault at ClamAV's daemon, the field's usual
//! engine, over its `INSTREAM` protocol; the built-in scanner knows only the EICAR test file, so
//! that the path from upload to refusal can be exercised anywhere.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// clamd's default `StreamMaxLength` chunking is free; 64 KiB keeps each write small.
const CHUNK: usize = 64 * 1024;

/// A clamd reply is one short line; anything longer is not clamd.
const MAX_REPLY: u64 = 4096;

/// Longest signature name passed on (ClamAV's are well under this).
const MAX_SIGNATURE: usize = 128;

/// The EICAR anti-malware test file, kept in two halves so that this program's own bytes never
/// hold it whole (an anti-virus on the build machine would quarantine the binary).
const EICAR_HEAD: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$";
const EICAR_TAIL: &[u8] = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// Which engine judges uploads: the `attachment_scanner` setting.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scanner {
    /// Recognises the EICAR test file only: for development and tests, never for production.
    Builtin,
    /// ClamAV's daemon on a TCP address (`host:port`).
    ClamdTcp(String),
    /// ClamAV's daemon on a Unix socket.
    ClamdUnix(PathBuf),
}

/// What a scanner said of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature that matched, as the engine names it (letters, digits and `._-:` only).
    Infected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("the scanner setting is not `builtin`, `clamd:HOST:PORT` or `clamd:/socket/path`")]
    BadSetting,
    #[error("the scanner cannot be reached: {0}")]
    Io(#[from] std::io::Error),
    #[error("the scanner did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the scanner answered something else than a verdict")]
    Protocol,
}

impl Scanner {
    /// `builtin`, `clamd:HOST:PORT` or `clamd:/path/to/clamd.sock`.
    pub fn parse(setting: &str) -> Result<Self, ScanError> {
        match setting.strip_prefix("clamd:") {
            None if setting == "builtin" => Ok(Self::Builtin),
            Some(path) if path.starts_with('/') => Ok(Self::ClamdUnix(PathBuf::from(path))),
            Some(address)
                if address.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok()
                }) =>
            {
                Ok(Self::ClamdTcp(address.to_owned()))
            }
            _ => Err(ScanError::BadSetting),
        }
    }

    /// Stored with each file the scanner passed.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::ClamdTcp(_) | Self::ClamdUnix(_) => "clamd",
        }
    }

    /// Judges `content`; any failure to get a verdict is an error, never a pass.
    pub async fn scan(&self, content: &[u8], limit: Duration) -> Result<Verdict, ScanError> {
        let scanning = async {
            match self {
                Self::Builtin => Ok(builtin(content)),
                Self::ClamdTcp(address) => {
                    instream(TcpStream::connect(address).await?, content).await
                }
                Self::ClamdUnix(path) => instream(UnixStream::connect(path).await?, content).await,
            }
        };
        tokio::time::timeout(limit, scanning)
            .await
            .map_err(|_| ScanError::Timeout(limit))?
    }
}

impl TryFrom<String> for Scanner {
    type Error = ScanError;

    fn try_from(setting: String) -> Result<Self, ScanError> {
        Self::parse(&setting)
    }
}

impl From<Scanner> for String {
    fn from(scanner: Scanner) -> String {
        match scanner {
            Scanner::Builtin => "builtin".into(),
            Scanner::ClamdTcp(address) => format!("clamd:{address}"),
            Scanner::ClamdUnix(path) => format!("clamd:{}", path.display()),
        }
    }
}

fn builtin(content: &[u8]) -> Verdict {
    // The tail is the rarer half: find it (SIMD), then look behind it for the head.
    let found = memchr::memmem::find_iter(content, EICAR_TAIL).any(|at| {
        at.checked_sub(EICAR_HEAD.len())
            .and_then(|start| content.get(start..at))
            == Some(EICAR_HEAD)
    });
    if found {
        Verdict::Infected("Eicar-Test-Signature".into())
    } else {
        Verdict::Clean
    }
}

/// clamd's `zINSTREAM`: the content in length-prefixed chunks, a zero length, one reply.
async fn instream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    content: &[u8],
) -> Result<Verdict, ScanError> {
    stream.write_all(b"zINSTREAM\0").await?;
    for chunk in content.chunks(CHUNK) {
        let len = u32::try_from(chunk.len()).map_err(|_| ScanError::Protocol)?;
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(chunk).await?;
    }
    stream.write_all(&0u32.to_be_bytes()).await?;
    stream.flush().await?;
    let mut reply = Vec::new();
    stream.take(MAX_REPLY).read_to_end(&mut reply).await?;
    parse_reply(&reply)
}

/// `stream: OK` or `stream: <signature> FOUND`; everything else (`... ERROR`, a size limit) is
/// no verdict.
fn parse_reply(reply: &[u8]) -> Result<Verdict, ScanError> {
    let text = std::str::from_utf8(reply).map_err(|_| ScanError::Protocol)?;
    let body = text
        .trim_end_matches(['\0', '\n'])
        .strip_prefix("stream: ")
        .ok_or(ScanError::Protocol)?;
    if body == "OK" {
        return Ok(Verdict::Clean);
    }
    let signature = body.strip_suffix(" FOUND").ok_or(ScanError::Protocol)?;
    let well_formed = !signature.is_empty()
        && signature.len() <= MAX_SIGNATURE
        && signature
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if well_formed {
        Ok(Verdict::Infected(signature.to_owned()))
    } else {
        // Still a detection: refuse the file without repeating what the engine said.
        Ok(Verdict::Infected("unnamed".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn eicar() -> Vec<u8> {
        [EICAR_HEAD, EICAR_TAIL].concat()
    }

    #[test]
    fn settings_parse_or_are_refused() {
        assert_eq!(Scanner::parse("builtin").unwrap(), Scanner::Builtin);
        assert_eq!(
            Scanner::parse("clamd:127.0.0.1:3310").unwrap(),
            Scanner::ClamdTcp("127.0.0.1:3310".into())
        );
        assert_eq!(
            Scanner::parse("clamd:/run/clamav/clamd.ctl").unwrap(),
            Scanner::ClamdUnix("/run/clamav/clamd.ctl".into())
        );
        for bad in [
            "",
            "none",
            "clamd:",
            "clamd:host",
            "clamd::3310",
            "clamd:h:99999",
        ] {
            assert!(Scanner::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_builtin_scanner_finds_eicar_anywhere() {
        let limit = Duration::from_secs(1);
        let builtin = Scanner::Builtin;
        assert_eq!(builtin.scan(b"", limit).await.unwrap(), Verdict::Clean);
        assert_eq!(builtin.scan(b"a log", limit).await.unwrap(), Verdict::Clean);
        let mut inside = b"log line\n".to_vec();
        inside.extend(eicar());
        inside.extend(b"\nmore");
        for file in [eicar(), inside] {
            assert!(matches!(
                builtin.scan(&file, limit).await.unwrap(),
                Verdict::Infected(_)
            ));
        }
        // One byte off is not the test file.
        let mut altered = eicar();
        altered[40] ^= 1;
        assert_eq!(builtin.scan(&altered, limit).await.unwrap(), Verdict::Clean);
    }

    #[test]
    fn clamd_replies_are_read_strictly() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0").unwrap(),
            Verdict::Infected("Win.Test.EICAR_HDB-1".into())
        );
        assert_eq!(
            parse_reply(b"stream: <script>alert(1)</script> FOUND\0").unwrap(),
            Verdict::Infected("unnamed".into())
        );
        for bad in [
            &b""[..],
            b"INSTREAM size limit exceeded. ERROR\0",
            b"stream: lstat() failed ERROR\0",
            b"stream: \xff FOUND",
            b"OK",
        ] {
            assert!(parse_reply(bad).is_err());
        }
    }

    /// A daemon's side of `zINSTREAM`, in process: the command, then big-endian lengths of chunks
    /// no larger than clamd's buffer, then a zero length; the reply ends the exchange.
    #[tokio::test]
    async fn instream_frames_the_content_as_clamd_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("clamd.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let daemon = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut command = [0u8; 10];
            stream.read_exact(&mut command).await.unwrap();
            assert_eq!(&command, b"zINSTREAM\0");
            let mut received = Vec::new();
            loop {
                let mut len = [0u8; 4];
                stream.read_exact(&mut len).await.unwrap();
                let len = usize::try_from(u32::from_be_bytes(len)).unwrap();
                if len == 0 {
                    break;
                }
                assert!(len <= CHUNK);
                let mut chunk = vec![0u8; len];
                stream.read_exact(&mut chunk).await.unwrap();
                received.extend(chunk);
            }
            stream
                .write_all(b"stream: Fake.Signature FOUND\0")
                .await
                .unwrap();
            received
        });
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let verdict = Scanner::ClamdUnix(socket)
            .scan(&content, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Infected("Fake.Signature".into()));
        assert_eq!(daemon.await.unwrap(), content);
    }

    #[tokio::test]
    async fn a_daemon_that_never_answers_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("clamd.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let _held = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        let outcome = Scanner::ClamdUnix(socket)
            .scan(b"x", Duration::from_millis(200))
            .await;
        assert!(matches!(outcome, Err(ScanError::Timeout(_))), "{outcome:?}");
    }

    #[tokio::test]
    async fn an_unreachable_daemon_is_an_error_not_a_pass() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap().to_string();
        drop(closed);
        let scanner = Scanner::parse(&format!("clamd:{address}")).unwrap();
        assert!(scanner.scan(b"x", Duration::from_secs(2)).await.is_err());
        let missing = Scanner::parse("clamd:/nonexistent/clamd.sock").unwrap();
        assert!(missing.scan(b"x", Duration::from_secs(2)).await.is_err());
    }
}
