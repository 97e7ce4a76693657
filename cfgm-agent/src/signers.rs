//! Who may sign the commits a host applies: OpenSSH `allowed_signers`, and
//! the verdict on one commit's SSH signature.
//!
//! This module owns parsing the allowed_signers file (the format of
//! ssh-keygen(1), "ALLOWED SIGNERS") and verifying a commit's `gpgsig`
//! header in-process, as `git verify-commit` does with
//! `gpg.format = ssh`: the signature must be an SSH signature (sshsig) in
//! the namespace `git`, made by a key listed in the file (trust comes from
//! the list only, never from the key the signature carries), valid at the
//! commit's committer time, over exactly the commit's signed payload.
//!
//! It answers with a [`Verdict`] — a typed outcome with a one-line reason —
//! and never decides what to do with it: fetching, anti-rollback and
//! applying belong to [`crate::git`] and the agent loop. It spawns nothing
//! (no `ssh-keygen`, no `git`).
//!
//! Not supported, and said so: `cert-authority` lines (signatures by SSH
//! certificates) trust nothing and produce a warning; timestamps in
//! `valid-after`/`valid-before` are read as UTC (ssh-keygen reads a
//! timestamp without `Z` as local time; hosts of a fleet run in UTC).

use git2::{ErrorCode, Oid, Repository};
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::fmt;
use std::path::Path;

/// One usable line of an allowed_signers file.
#[derive(Clone, Debug)]
pub struct Signer {
    /// The principals field as written (`alice@example.net,ops`).
    pub principals: String,
    /// `namespaces="…"`: the patterns of namespaces the key may sign in
    /// (`None`: any namespace).
    pub namespaces: Option<Vec<String>>,
    /// `valid-after`, Unix seconds.
    pub valid_after: Option<i64>,
    /// `valid-before`, Unix seconds.
    pub valid_before: Option<i64>,
    pub key: PublicKey,
    /// The line in the file (one-based).
    pub line: usize,
}

impl Signer {
    /// Whether this line lets its key sign in `namespace`.
    fn allows_namespace(&self, namespace: &str) -> bool {
        match &self.namespaces {
            None => true,
            Some(list) => pattern_list_match(list, namespace),
        }
    }

    /// Why the key is not valid at `time` (Unix seconds), if it is not.
    fn invalid_at(&self, time: i64) -> Option<String> {
        if let Some(after) = self.valid_after {
            if time < after {
                return Some(format!(
                    "not valid before {} (line {})",
                    format_utc(after),
                    self.line
                ));
            }
        }
        if let Some(before) = self.valid_before {
            if time > before {
                return Some(format!(
                    "expired at {} (line {})",
                    format_utc(before),
                    self.line
                ));
            }
        }
        None
    }
}

/// The parsed allowed_signers file.
#[derive(Clone, Debug, Default)]
pub struct AllowedSigners {
    pub signers: Vec<Signer>,
    /// Lines that were understood but trust nothing (`cert-authority`, a
    /// key type this build does not verify), as `FILE:LINE: message`.
    pub warnings: Vec<String>,
}

/// An allowed_signers file that could not be read or has a malformed line.
/// A malformed file trusts nothing: the caller refuses every commit.
#[derive(Debug, thiserror::Error)]
pub enum SignersError {
    #[error("read allowed_signers {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Every malformed line, as `FILE:LINE: message`.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Key types this build verifies.
const KEY_TYPES: [&str; 3] = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"];

/// Key types OpenSSH knows but this build does not verify: such a line is a
/// warning, not an error.
const OTHER_KEY_TYPES: [&str; 7] = [
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "rsa-sha2-256",
    "rsa-sha2-512",
];

impl AllowedSigners {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<AllowedSigners, SignersError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        AllowedSigners::parse(&path.display().to_string(), &text)
    }

    /// Parses allowed_signers text; `name` is the file name messages show.
    /// Every malformed line is reported.
    pub fn parse(name: &str, text: &str) -> Result<AllowedSigners, SignersError> {
        let mut out = AllowedSigners::default();
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line, n) {
                Ok(Parsed::Signer(s)) => out.signers.push(*s),
                Ok(Parsed::Ignored(why)) => out.warnings.push(format!("{name}:{n}: {why}")),
                Err(e) => errors.push(format!("{name}:{n}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(SignersError::Invalid(errors))
        }
    }
}

enum Parsed {
    Signer(Box<Signer>),
    Ignored(String),
}

fn parse_line(line: &str, n: usize) -> Result<Parsed, String> {
    let fields = split_fields(line)?;
    let mut it = fields.into_iter();
    let principals = it.next().ok_or("no principals")?;
    let mut next = it.next().ok_or("no key after the principals")?;
    let mut namespaces = None;
    let mut valid_after = None;
    let mut valid_before = None;
    let mut cert_authority = false;
    let is_key_type = |s: &str| KEY_TYPES.contains(&s) || OTHER_KEY_TYPES.contains(&s);
    if !is_key_type(&next) {
        // The options field.
        for opt in split_options(&next)? {
            let (k, v) = match opt.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(unquote(v)?)),
                None => (opt.to_ascii_lowercase(), None),
            };
            match (k.as_str(), v) {
                ("cert-authority", None) => cert_authority = true,
                ("namespaces", Some(v)) => {
                    namespaces = Some(v.split(',').map(|s| s.trim().to_string()).collect())
                }
                ("valid-after", Some(v)) => valid_after = Some(parse_time(&v)?),
                ("valid-before", Some(v)) => valid_before = Some(parse_time(&v)?),
                ("namespaces" | "valid-after" | "valid-before", None) => {
                    return Err(format!("option {k} needs a value (e.g. {k}=\"…\")"))
                }
                (_, _) => {
                    return Err(format!(
                        "unknown option \"{k}\" (expected cert-authority, namespaces, valid-after or valid-before)"
                    ))
                }
            }
        }
        next = it.next().ok_or("no key type after the options")?;
    }
    let key_type = next;
    let blob = it
        .next()
        .ok_or_else(|| format!("no key after {key_type}"))?;
    if !KEY_TYPES.contains(&key_type.as_str()) {
        if OTHER_KEY_TYPES.contains(&key_type.as_str()) {
            return Ok(Parsed::Ignored(format!(
                "key type {key_type} is not supported by cfgm; this line trusts nothing"
            )));
        }
        return Err(format!(
            "unknown key type \"{key_type}\" (expected one of {})",
            KEY_TYPES.join(", ")
        ));
    }
    let key = PublicKey::from_openssh(&format!("{key_type} {blob}"))
        .map_err(|e| format!("{key_type} key does not decode: {e}"))?;
    if key.algorithm().as_str() != key_type {
        return Err(format!(
            "key type {key_type} does not match the key, which is {}",
            key.algorithm()
        ));
    }
    if cert_authority {
        return Ok(Parsed::Ignored(
            "cert-authority is not supported by cfgm (signatures by SSH certificates are refused); this line trusts nothing".into(),
        ));
    }
    if let (Some(a), Some(b)) = (valid_after, valid_before) {
        if a > b {
            return Err("valid-after is later than valid-before".into());
        }
    }
    Ok(Parsed::Signer(Box::new(Signer {
        principals: unquote(&principals)?,
        namespaces,
        valid_after,
        valid_before,
        key,
        line: n,
    })))
}

/// Splits a line on blanks outside double quotes.
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    fields.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if !cur.is_empty() {
        fields.push(cur);
    }
    Ok(fields)
}

/// Splits the options field on commas outside double quotes
/// (`namespaces="file,git",valid-after="20240101"`).
fn split_options(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    if out.iter().any(|o| o.is_empty()) {
        return Err(format!("empty option in \"{s}\""));
    }
    Ok(out)
}

fn unquote(v: &str) -> Result<String, String> {
    match v.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .map(str::to_string)
            .ok_or_else(|| format!("unterminated quote in {v}")),
        None => Ok(v.to_string()),
    }
}

/// `YYYYMMDD[HHMM[SS]][Z]`, as UTC, to Unix seconds.
fn parse_time(v: &str) -> Result<i64, String> {
    let bad = || format!("timestamp \"{v}\" is not YYYYMMDD[HHMM[SS]][Z]");
    let digits = v.strip_suffix(['Z', 'z']).unwrap_or(v);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map(|s| s.parse::<i64>().unwrap_or(0));
    let (y, mo, d) = (num(0..4).unwrap(), num(4..6).unwrap(), num(6..8).unwrap());
    let (h, mi, s) = (
        num(8..10).unwrap_or(0),
        num(10..12).unwrap_or(0),
        num(12..14).unwrap_or(0),
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// OpenSSH pattern lists: comma-separated `*`/`?` globs, `!` negates (a
/// negated match refuses, whatever else matches).
fn pattern_list_match(list: &[String], s: &str) -> bool {
    let mut matched = false;
    for p in list {
        match p.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), s.as_bytes()) => return false,
            Some(_) => {}
            None if glob(p.as_bytes(), s.as_bytes()) => matched = true,
            None => {}
        }
    }
    matched
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The verdict on a commit's signature. Only [`Verdict::Trusted`] lets the
/// commit be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A good SSH signature in namespace `git` by a listed key, valid at the
    /// commit time.
    Trusted {
        principal: String,
        key_fingerprint: String,
    },
    /// The commit carries no signature.
    Unsigned,
    /// A signature that is not SSH (`openpgp`, `x509` or `unknown`).
    NotSsh { format: &'static str },
    /// SSH armor, but the signature does not decode (truncated, corrupt).
    Malformed { detail: String },
    /// An SSH signature made for another namespace (e.g. `file`).
    WrongNamespace { namespace: String },
    /// Signed by a key that is not in allowed_signers.
    UnknownKey {
        key_fingerprint: String,
        algorithm: String,
    },
    /// The key is listed, but its `namespaces=` does not include `git`.
    NamespaceNotAllowed {
        principal: String,
        key_fingerprint: String,
    },
    /// The key is listed, but not valid at the commit's committer time.
    Expired {
        principal: String,
        key_fingerprint: String,
        detail: String,
    },
    /// A listed key, but the signature does not match the signed payload:
    /// the commit was altered after signing, or the signature is another's.
    BadSignature {
        principal: String,
        key_fingerprint: String,
    },
}

impl Verdict {
    pub fn is_trusted(&self) -> bool {
        matches!(self, Verdict::Trusted { .. })
    }

    /// A short stable name, for logs and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Trusted { .. } => "trusted",
            Verdict::Unsigned => "unsigned",
            Verdict::NotSsh { .. } => "not-ssh",
            Verdict::Malformed { .. } => "malformed",
            Verdict::WrongNamespace { .. } => "wrong-namespace",
            Verdict::UnknownKey { .. } => "unknown-key",
            Verdict::NamespaceNotAllowed { .. } => "namespace-not-allowed",
            Verdict::Expired { .. } => "expired",
            Verdict::BadSignature { .. } => "bad-signature",
        }
    }

    /// The reason in one line, for people.
    pub fn reason(&self) -> String {
        match self {
            Verdict::Trusted {
                principal,
                key_fingerprint,
            } => format!("good signature by {principal} ({key_fingerprint})"),
            Verdict::Unsigned => "the commit is not signed".into(),
            Verdict::NotSsh { format } => format!(
                "the commit is signed with {format}, not SSH; only SSH signatures are accepted"
            ),
            Verdict::Malformed { detail } => {
                format!("the commit's SSH signature does not decode: {detail}")
            }
            Verdict::WrongNamespace { namespace } => format!(
                "the SSH signature is for namespace \"{namespace}\", not \"git\""
            ),
            Verdict::UnknownKey {
                key_fingerprint,
                algorithm,
            } => format!(
                "signed by {algorithm} key {key_fingerprint}, which is not in allowed_signers"
            ),
            Verdict::NamespaceNotAllowed {
                principal,
                key_fingerprint,
            } => format!(
                "key {key_fingerprint} of {principal} is not allowed to sign in namespace \"git\" (see its namespaces= option)"
            ),
            Verdict::Expired {
                principal,
                key_fingerprint,
                detail,
            } => format!(
                "key {key_fingerprint} of {principal} is not valid at the commit time: {detail}"
            ),
            Verdict::BadSignature {
                principal,
                key_fingerprint,
            } => format!(
                "the signature by {principal} ({key_fingerprint}) does not match the commit: it was altered after signing"
            ),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

/// The namespace git signs commits in.
pub const NAMESPACE: &str = "git";

/// Verifies the signature of commit `commit` in `repo`. A missing or bad
/// signature is a [`Verdict`]; `Err` is only a repository error (no such
/// commit, unreadable object).
pub fn verify_commit(
    repo: &Repository,
    commit: Oid,
    signers: &AllowedSigners,
) -> Result<Verdict, git2::Error> {
    let time = repo.find_commit(commit)?.committer().when().seconds();
    let (signature, payload) = match repo.extract_signature(&commit, None) {
        Ok(pair) => pair,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(Verdict::Unsigned),
        Err(e) => return Err(e),
    };
    Ok(verify_payload(&signature, &payload, time, signers))
}

/// Verifies a `gpgsig` header value against the signed `payload` (the
/// commit without that header), at `time` (the committer time).
pub fn verify_payload(
    signature: &[u8],
    payload: &[u8],
    time: i64,
    signers: &AllowedSigners,
) -> Verdict {
    let text = String::from_utf8_lossy(signature);
    let head = text.trim_start();
    if !head.starts_with("-----BEGIN SSH SIGNATURE-----") {
        let format = if head.starts_with("-----BEGIN PGP SIGNATURE-----")
            || head.starts_with("-----BEGIN PGP MESSAGE-----")
        {
            "openpgp"
        } else if head.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            "x509"
        } else {
            "unknown"
        };
        return Verdict::NotSsh { format };
    }
    let sig = match SshSig::from_pem(head.trim_end().as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            return Verdict::Malformed {
                detail: e.to_string(),
            }
        }
    };
    if sig.namespace() != NAMESPACE {
        return Verdict::WrongNamespace {
            namespace: sig.namespace().to_string(),
        };
    }
    let key_fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    // Trust comes from the list: find the listed lines for this exact key.
    let listed: Vec<&Signer> = signers
        .signers
        .iter()
        .filter(|s| s.key.key_data() == sig.public_key())
        .collect();
    if listed.is_empty() {
        return Verdict::UnknownKey {
            key_fingerprint,
            algorithm: sig.public_key().algorithm().to_string(),
        };
    }
    let for_git: Vec<&Signer> = listed
        .iter()
        .copied()
        .filter(|s| s.allows_namespace(NAMESPACE))
        .collect();
    let Some(first) = for_git.first() else {
        return Verdict::NamespaceNotAllowed {
            principal: listed[0].principals.clone(),
            key_fingerprint,
        };
    };
    let Some(signer) = for_git.iter().find(|s| s.invalid_at(time).is_none()) else {
        return Verdict::Expired {
            principal: first.principals.clone(),
            key_fingerprint,
            detail: first.invalid_at(time).unwrap_or_default(),
        };
    };
    match signer.key.verify(NAMESPACE, payload, &sig) {
        Ok(()) => Verdict::Trusted {
            principal: signer.principals.clone(),
            key_fingerprint,
        },
        Err(_) => Verdict::BadSignature {
            principal: signer.principals.clone(),
            key_fingerprint,
        },
    }
}
