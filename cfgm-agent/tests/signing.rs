//! Test support: keys, trees and signed commits made in-process (git2 and
//! ssh-key), and `git verify-commit` as a second opinion.

use git2::{Oid, Repository, Signature, Time};
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, PrivateKey};
use std::path::Path;
use std::sync::OnceLock;

/// A key of each algorithm cfgm verifies; the RSA key is made once per
/// test binary (2048-bit generation is slow in a debug build).
pub fn ed25519() -> PrivateKey {
    PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap()
}

pub fn ecdsa() -> PrivateKey {
    PrivateKey::random(
        &mut OsRng,
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
    )
    .unwrap()
}

pub fn rsa() -> PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let kp = ssh_key::private::RsaKeypair::random(&mut OsRng, 2048).unwrap();
        PrivateKey::new(ssh_key::private::KeypairData::from(kp), "rsa").unwrap()
    })
    .clone()
}

/// `principal [options] keytype base64` for allowed_signers.
pub fn signer_line(principal: &str, options: &str, key: &PrivateKey) -> String {
    let public = key.public_key().to_openssh().unwrap();
    let mut parts = public.split_whitespace();
    let (t, b) = (parts.next().unwrap(), parts.next().unwrap());
    if options.is_empty() {
        format!("{principal} {t} {b}")
    } else {
        format!("{principal} {options} {t} {b}")
    }
}

/// How a test commit is signed.
pub enum Sign<'a> {
    None,
    /// Signed by the key in the namespace.
    Ssh(&'a PrivateKey, &'a str),
    /// This text as the gpgsig header.
    Raw(String),
    /// Signed by the key, then the message changed: the signature is for
    /// other bytes.
    Tampered(&'a PrivateKey),
}

/// One entry of a test tree.
pub enum Entry<'a> {
    File(&'a [u8]),
    Link(&'a str),
}

/// Writes a (nested) tree from paths.
pub fn tree(repo: &Repository, entries: &[(&str, Entry)]) -> Oid {
    let mut b = repo.treebuilder(None).unwrap();
    let mut subdirs: std::collections::BTreeMap<&str, Vec<(&str, &Entry)>> = Default::default();
    for (path, e) in entries {
        match path.split_once('/') {
            Some((dir, rest)) => subdirs.entry(dir).or_default().push((rest, e)),
            None => {
                let (data, mode) = match e {
                    Entry::File(d) => (*d, 0o100644),
                    Entry::Link(t) => (t.as_bytes(), 0o120000),
                };
                let blob = repo.blob(data).unwrap();
                b.insert(path, blob, mode).unwrap();
            }
        }
    }
    for (dir, list) in subdirs {
        let owned: Vec<(&str, Entry)> = list
            .into_iter()
            .map(|(p, e)| {
                (
                    p,
                    match e {
                        Entry::File(d) => Entry::File(d),
                        Entry::Link(t) => Entry::Link(t),
                    },
                )
            })
            .collect();
        let sub = tree(repo, &owned);
        b.insert(dir, sub, 0o040000).unwrap();
    }
    b.write().unwrap()
}

/// A commit of `tree_id` on `parents`, at `time` (Unix seconds), signed as
/// asked; not on any ref.
pub fn commit_at(
    repo: &Repository,
    tree_id: Oid,
    parents: &[Oid],
    msg: &str,
    sign: Sign,
    time: i64,
) -> Oid {
    let who = Signature::new("cfgm test", "test@cfgm.invalid", &Time::new(time, 0)).unwrap();
    let tree = repo.find_tree(tree_id).unwrap();
    let parents: Vec<git2::Commit> = parents
        .iter()
        .map(|p| repo.find_commit(*p).unwrap())
        .collect();
    let prefs: Vec<&git2::Commit> = parents.iter().collect();
    let buf = |m: &str| {
        let b = repo
            .commit_create_buffer(&who, &who, m, &tree, &prefs)
            .unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    };
    let content = buf(msg);
    let pem = |key: &PrivateKey, ns: &str, data: &str| sign_pem(key, ns, data.as_bytes());
    match sign {
        Sign::None => {
            let p: Vec<&git2::Commit> = prefs.clone();
            repo.commit(None, &who, &who, msg, &tree, &p).unwrap()
        }
        Sign::Ssh(key, ns) => repo
            .commit_signed(&content, pem(key, ns, &content).trim_end(), None)
            .unwrap(),
        Sign::Raw(text) => repo.commit_signed(&content, text.trim_end(), None).unwrap(),
        Sign::Tampered(key) => {
            let other = buf(&format!("{msg} (altered)"));
            let sig = pem(key, "git", &content);
            repo.commit_signed(&other, sig.trim_end(), None).unwrap()
        }
    }
}

/// An sshsig over `data` in namespace `ns` (sha512, as git signs), armored.
pub fn sign_pem(key: &PrivateKey, ns: &str, data: &[u8]) -> String {
    let sig = match key.key_data().rsa() {
        None => key.sign(ns, HashAlg::Sha512, data).unwrap(),
        Some(kp) => {
            use rsa::signature::{SignatureEncoding, Signer};
            let big =
                |m: &ssh_key::Mpint| rsa::BigUint::from_bytes_be(m.as_positive_bytes().unwrap());
            let private = rsa::RsaPrivateKey::from_components(
                big(&kp.public.n),
                big(&kp.public.e),
                big(&kp.private.d),
                vec![big(&kp.private.p), big(&kp.private.q)],
            )
            .unwrap();
            let signed = ssh_key::SshSig::signed_data(ns, HashAlg::Sha512, data).unwrap();
            let bytes = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private)
                .sign(&signed)
                .to_vec();
            let signature = ssh_key::Signature::new(
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                bytes,
            )
            .unwrap();
            ssh_key::SshSig::new(
                key.public_key().key_data().clone(),
                ns,
                HashAlg::Sha512,
                signature,
            )
            .unwrap()
        }
    };
    sig.to_pem(LineEnding::LF).unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A commit of one file, signed as asked, at the current time.
pub fn commit(repo: &Repository, parents: &[Oid], msg: &str, sign: Sign) -> Oid {
    let t = tree(repo, &[("README", Entry::File(msg.as_bytes()))]);
    commit_at(repo, t, parents, msg, sign, now())
}

/// Points `refs/heads/main` at `oid` (a push, forced).
pub fn set_main(repo: &Repository, oid: Oid) {
    repo.reference("refs/heads/main", oid, true, "test")
        .unwrap();
}

/// `git verify-commit` with the allowed_signers file: whether git accepts
/// the commit. `None` when git or ssh-keygen is missing.
pub fn git_verify(git_dir: &Path, allowed: &Path, commit: Oid) -> Option<bool> {
    if std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_err()
    {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
        .args(["verify-commit", &commit.to_string()])
        .output()
        .ok()?;
    Some(out.status.success())
}
