//! The SSH transport of fleet commands (`cfgm facts fetch`, `cfgm apply`,
//! `cfgm bootstrap`): one host at a time per session, many at once from a
//! bounded pool.
//!
//! This module owns connecting (with a timeout), host-key checking against
//! a `known_hosts` file (an unknown or changed key is refused, never
//! learned), authentication (an identity file, else ssh-agent), running a
//! command as an argument vector (quoted for the remote shell), reading a
//! remote file and copying one in (scp). It knows nothing of cfgm: what to
//! run and what the output means is the caller's business.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How to reach hosts.
#[derive(Clone, Debug)]
pub struct SshOptions {
    pub user: String,
    pub port: u16,
    /// A private key; without one, the keys of a running ssh-agent.
    pub identity: Option<PathBuf>,
    /// The host keys to trust (OpenSSH known_hosts format).
    pub known_hosts: PathBuf,
    /// The longest a connection (and, separately, each command) may take.
    pub timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        SshOptions {
            user: "root".into(),
            port: 22,
            identity: None,
            known_hosts: home.join(".ssh/known_hosts"),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a host could not be reached or a command not run.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("connect to {addr}: {why}")]
    Connect { addr: String, why: String },
    #[error(
        "{host}: host key is not in {known_hosts} (refusing an unknown host; add its key first)"
    )]
    UnknownHostKey { host: String, known_hosts: String },
    #[error("{host}: HOST KEY CHANGED (does not match {known_hosts}); refusing to connect")]
    ChangedHostKey { host: String, known_hosts: String },
    #[error("{host}: authentication as {user} failed: {why}")]
    Auth {
        host: String,
        user: String,
        why: String,
    },
    #[error("{host}: {what}: timed out after {secs} s")]
    Timeout {
        host: String,
        what: String,
        secs: u64,
    },
    #[error("{host}: {what}: {why}")]
    Session {
        host: String,
        what: String,
        why: String,
    },
}

/// What a remote command did.
#[derive(Clone, Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A connected, authenticated session to one host.
pub struct Session {
    host: String,
    sess: ssh2::Session,
    timeout: Duration,
}

/// Quotes one argument for a POSIX shell (the remote side of `exec`).
pub fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

impl Session {
    /// Connects to `host` (a name or address) and authenticates; the host
    /// key must be in known_hosts under `host`.
    pub fn connect(host: &str, opts: &SshOptions) -> Result<Session, SshError> {
        let addr_text = format!("{host}:{}", opts.port);
        let connect_err = |why: String| SshError::Connect {
            addr: addr_text.clone(),
            why,
        };
        let addrs: Vec<SocketAddr> = addr_text
            .to_socket_addrs()
            .map_err(|e| connect_err(e.to_string()))?
            .collect();
        let addr = addrs
            .first()
            .ok_or_else(|| connect_err("no address".into()))?;
        let tcp = TcpStream::connect_timeout(addr, opts.timeout).map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                SshError::Timeout {
                    host: host.into(),
                    what: "connect".into(),
                    secs: opts.timeout.as_secs(),
                }
            } else {
                connect_err(e.to_string())
            }
        })?;
        let _ = tcp.set_nodelay(true);
        let mut sess = ssh2::Session::new().map_err(|e| connect_err(e.to_string()))?;
        sess.set_tcp_stream(tcp);
        sess.set_timeout(opts.timeout.as_millis().min(u32::MAX as u128) as u32);
        let s = |what: &str, e: ssh2::Error| session_err(host, what, e, opts.timeout);
        sess.handshake().map_err(|e| s("handshake", e))?;
        check_host_key(host, opts.port, &sess, &opts.known_hosts)?;
        let auth = match &opts.identity {
            Some(key) => sess.userauth_pubkey_file(&opts.user, None, key, None),
            None => sess.userauth_agent(&opts.user),
        };
        if let Err(e) = auth {
            return Err(SshError::Auth {
                host: host.into(),
                user: opts.user.clone(),
                why: match &opts.identity {
                    Some(k) => format!("key {}: {}", k.display(), e.message()),
                    None => format!("ssh-agent: {} (or pass --identity)", e.message()),
                },
            });
        }
        if !sess.authenticated() {
            return Err(SshError::Auth {
                host: host.into(),
                user: opts.user.clone(),
                why: "not authenticated".into(),
            });
        }
        Ok(Session {
            host: host.into(),
            sess,
            timeout: opts.timeout,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn err(&self, what: &str, e: ssh2::Error) -> SshError {
        session_err(&self.host, what, e, self.timeout)
    }

    /// Runs an argument vector on the host (quoted for its shell) and
    /// collects its output; `timeout` bounds the whole command.
    pub fn exec(&self, argv: &[&str], timeout: Duration) -> Result<Output, SshError> {
        let cmd: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        self.exec_line(&cmd.join(" "), timeout)
    }

    /// Runs a command line in the host's shell.
    pub fn exec_line(&self, line: &str, timeout: Duration) -> Result<Output, SshError> {
        let what = format!("run `{line}`");
        self.sess
            .set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
        let deadline = Instant::now() + timeout;
        let mut ch = self
            .sess
            .channel_session()
            .map_err(|e| self.err(&what, e))?;
        ch.exec(line).map_err(|e| self.err(&what, e))?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        // Stdout then stderr: each read is bounded by the session timeout,
        // the whole by the deadline.
        read_all(&mut ch, &mut stdout, deadline).map_err(|e| self.io(&what, e, timeout))?;
        read_all(&mut ch.stderr(), &mut stderr, deadline)
            .map_err(|e| self.io(&what, e, timeout))?;
        ch.wait_close().map_err(|e| self.err(&what, e))?;
        let status = ch.exit_status().map_err(|e| self.err(&what, e))?;
        self.sess
            .set_timeout(self.timeout.as_millis().min(u32::MAX as u128) as u32);
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    fn io(&self, what: &str, e: std::io::Error, timeout: Duration) -> SshError {
        if e.kind() == std::io::ErrorKind::TimedOut {
            SshError::Timeout {
                host: self.host.clone(),
                what: what.into(),
                secs: timeout.as_secs(),
            }
        } else {
            SshError::Session {
                host: self.host.clone(),
                what: what.into(),
                why: e.to_string(),
            }
        }
    }

    /// A remote file's bytes (SFTP); `None` when it does not exist.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        let what = format!("read {path}");
        let sftp = self.sess.sftp().map_err(|e| self.err(&what, e))?;
        let mut f = match sftp.open(Path::new(path)) {
            Ok(f) => f,
            Err(e) if e.code() == ssh2::ErrorCode::SFTP(2) => return Ok(None),
            Err(e) => return Err(self.err(&what, e)),
        };
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| self.io(&what, e, self.timeout))?;
        Ok(Some(buf))
    }

    /// Copies bytes to a remote path (scp) with a mode.
    pub fn write_file(&self, path: &str, bytes: &[u8], mode: i32) -> Result<(), SshError> {
        let what = format!("copy to {path}");
        let mut ch = self
            .sess
            .scp_send(Path::new(path), mode, bytes.len() as u64, None)
            .map_err(|e| self.err(&what, e))?;
        ch.write_all(bytes)
            .map_err(|e| self.io(&what, e, self.timeout))?;
        ch.send_eof().map_err(|e| self.err(&what, e))?;
        ch.wait_eof().map_err(|e| self.err(&what, e))?;
        ch.close().map_err(|e| self.err(&what, e))?;
        ch.wait_close().map_err(|e| self.err(&what, e))?;
        Ok(())
    }
}

fn read_all(r: &mut impl Read, out: &mut Vec<u8>, deadline: Instant) -> std::io::Result<()> {
    let mut buf = [0u8; 32 * 1024];
    loop {
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "deadline",
            ));
        }
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn session_err(host: &str, what: &str, e: ssh2::Error, timeout: Duration) -> SshError {
    // libssh2's timeout error code.
    if e.code() == ssh2::ErrorCode::Session(-9) {
        SshError::Timeout {
            host: host.into(),
            what: what.into(),
            secs: timeout.as_secs(),
        }
    } else {
        SshError::Session {
            host: host.into(),
            what: what.into(),
            why: e.message().to_string(),
        }
    }
}

/// Checks the server's key against known_hosts: only a match passes.
fn check_host_key(
    host: &str,
    port: u16,
    sess: &ssh2::Session,
    known_hosts: &Path,
) -> Result<(), SshError> {
    let kh_text = known_hosts.display().to_string();
    let (key, _) = sess.host_key().ok_or_else(|| SshError::Session {
        host: host.into(),
        what: "host key".into(),
        why: "the server sent none".into(),
    })?;
    let mut kh = sess.known_hosts().map_err(|e| SshError::Session {
        host: host.into(),
        what: "known_hosts".into(),
        why: e.message().to_string(),
    })?;
    if kh
        .read_file(known_hosts, ssh2::KnownHostFileKind::OpenSSH)
        .is_err()
    {
        return Err(SshError::UnknownHostKey {
            host: host.into(),
            known_hosts: format!("{kh_text} (unreadable)"),
        });
    }
    match kh.check_port(host, port, key) {
        ssh2::CheckResult::Match => Ok(()),
        ssh2::CheckResult::Mismatch => Err(SshError::ChangedHostKey {
            host: host.into(),
            known_hosts: kh_text,
        }),
        ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure => Err(SshError::UnknownHostKey {
            host: host.into(),
            known_hosts: kh_text,
        }),
    }
}

/// Runs `f` for every item on at most `parallel` threads at once; results
/// in the items' order. `f` is called from several threads.
pub fn fan_out<T: Sync, R: Send>(
    items: &[T],
    parallel: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                *results[i].lock().expect("result slot") = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("result slot")
                .expect("every item ran")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_for_the_remote_shell() {
        assert_eq!(shell_quote("cfgm-agent"), "cfgm-agent");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn fan_out_keeps_order_and_bounds_parallelism() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let items: Vec<u32> = (0..40).collect();
        let out = fan_out(&items, 4, |i| {
            let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 4);
    }
}
