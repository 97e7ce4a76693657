//! allowed_signers parsing and commit signature verdicts, on commits made
//! by the test and signed in-process; cross-checked with `git verify-commit`
//! where git and ssh-keygen are installed.

use crate::signing::*;
use cfgm_agent::signers::{verify_commit, AllowedSigners, SignersError, Verdict};
use git2::Repository;
use std::path::Path;

fn setup() -> (tempfile::TempDir, Repository) {
    let t = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(t.path().join("r.git")).unwrap();
    (t, repo)
}

fn allowed(dir: &Path, text: &str) -> (AllowedSigners, std::path::PathBuf) {
    let p = dir.join("allowed_signers");
    std::fs::write(&p, text).unwrap();
    (AllowedSigners::load(&p).unwrap(), p)
}

/// Checks our verdict, and git's where it can be asked.
fn check(repo: &Repository, file: &Path, signers: &AllowedSigners, c: git2::Oid) -> Verdict {
    let v = verify_commit(repo, c, signers).unwrap();
    if let Some(git_ok) = git_verify(repo.path(), file, c) {
        assert_eq!(
            git_ok,
            v.is_trusted(),
            "git verify-commit disagrees with {v:?}"
        );
    }
    v
}

#[test]
fn trusted_ed25519_ecdsa_rsa_commits_are_accepted() {
    let (t, repo) = setup();
    let keys = [
        ("ed@ops", ed25519()),
        ("ec@ops", ecdsa()),
        ("rsa@ops", rsa()),
    ];
    let text: String = keys
        .iter()
        .map(|(p, k)| signer_line(p, "", k) + "\n")
        .collect();
    let (signers, file) = allowed(t.path(), &text);
    for (principal, key) in &keys {
        let c = commit(&repo, &[], principal, Sign::Ssh(key, "git"));
        let v = check(&repo, &file, &signers, c);
        match &v {
            Verdict::Trusted {
                principal: p,
                key_fingerprint,
            } => {
                assert_eq!(p, principal);
                assert!(key_fingerprint.starts_with("SHA256:"), "{key_fingerprint}");
                assert_eq!(
                    *key_fingerprint,
                    key.public_key()
                        .fingerprint(ssh_key::HashAlg::Sha256)
                        .to_string()
                );
            }
            other => panic!("{principal}: {other:?}"),
        }
        assert!(
            v.reason().starts_with("good signature by"),
            "{}",
            v.reason()
        );
    }
}

#[test]
fn unsigned_untrusted_wrong_namespace_tampered_pgp_truncated_are_refused() {
    let (t, repo) = setup();
    let trusted = ed25519();
    let stranger = ed25519();
    let (signers, file) = allowed(
        t.path(),
        &format!(
            "# the release key\n\n{}\n",
            signer_line("release@ops", "", &trusted)
        ),
    );
    let pem = sign_pem(&trusted, "git", b"other bytes");
    let lines: Vec<&str> = pem.lines().collect();
    // Armor kept, body cut in the middle.
    let truncated = [&lines[..2], &lines[lines.len() - 1..]].concat().join("\n");
    let pgp =
        "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----";
    let cases: Vec<(&str, Sign, &str)> = vec![
        ("unsigned", Sign::None, "unsigned"),
        ("stranger", Sign::Ssh(&stranger, "git"), "unknown-key"),
        (
            "file namespace",
            Sign::Ssh(&trusted, "file"),
            "wrong-namespace",
        ),
        ("tampered", Sign::Tampered(&trusted), "bad-signature"),
        ("pgp", Sign::Raw(pgp.to_string()), "not-ssh"),
        ("truncated", Sign::Raw(truncated), "malformed"),
    ];
    for (what, sign, code) in cases {
        let c = commit(&repo, &[], what, sign);
        let v = check(&repo, &file, &signers, c);
        assert_eq!(v.code(), code, "{what}: {v:?}");
        assert!(!v.is_trusted());
        let reason = v.reason();
        assert!(!reason.is_empty() && !reason.contains('\n'), "{reason}");
        println!("{what}: {reason}");
    }
    // The reasons say what is wrong, in words an operator can act on.
    let v = verify_commit(
        &repo,
        commit(&repo, &[], "s", Sign::Ssh(&stranger, "git")),
        &signers,
    )
    .unwrap();
    let fp = stranger
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    assert!(v.reason().contains(&fp) && v.reason().contains("not in allowed_signers"));
    let v = verify_commit(
        &repo,
        commit(&repo, &[], "p", Sign::Raw(pgp.into())),
        &signers,
    )
    .unwrap();
    assert!(v.reason().contains("openpgp"), "{}", v.reason());
}

#[test]
fn allowed_signers_options_namespaces_validity_and_cert_authority() {
    let (t, repo) = setup();
    let (a, b, c, d, e) = (ed25519(), ed25519(), ed25519(), ed25519(), ed25519());
    let text = [
        // Quoted options with commas inside: git is allowed.
        signer_line("a@ops,\"b c\"", "namespaces=\"file,git\"", &a),
        // Only `file`: this key may not sign commits.
        signer_line("b@ops", "namespaces=\"file\"", &b),
        // Expired before the commit time.
        signer_line("c@ops", "valid-before=\"20200101\"", &c),
        // Valid from far in the future.
        signer_line("d@ops", "valid-after=\"20990101Z\",namespaces=\"git\"", &d),
        // A CA line trusts nothing here.
        signer_line("*@ops", "cert-authority", &e),
    ]
    .join("\n");
    let (signers, file) = allowed(t.path(), &text);
    assert_eq!(signers.signers.len(), 4);
    assert_eq!(signers.warnings.len(), 1);
    assert!(
        signers.warnings[0].contains(":5: cert-authority is not supported"),
        "{:?}",
        signers.warnings
    );
    let verdict = |k, name| {
        let c = commit(&repo, &[], name, Sign::Ssh(k, "git"));
        check(&repo, &file, &signers, c)
    };
    assert!(
        matches!(verdict(&a, "a"), Verdict::Trusted { principal, .. } if principal == "a@ops,\"b c\"")
    );
    assert_eq!(verdict(&b, "b").code(), "namespace-not-allowed");
    let v = verdict(&c, "c");
    assert_eq!(v.code(), "expired", "{v:?}");
    assert!(
        v.reason()
            .contains("expired at 2020-01-01T00:00:00Z (line 3)"),
        "{}",
        v.reason()
    );
    let v = verdict(&d, "d");
    assert_eq!(v.code(), "expired", "{v:?}");
    assert!(
        v.reason().contains("not valid before 2099-01-01"),
        "{}",
        v.reason()
    );
    assert_eq!(verdict(&e, "e").code(), "unknown-key");

    // The validity window is checked against the commit time, as git does.
    let tree = tree(&repo, &[("f", Entry::File(b"x"))]);
    let old = commit_at(&repo, tree, &[], "old", Sign::Ssh(&c, "git"), 1_500_000_000);
    assert!(check(&repo, &file, &signers, old).is_trusted());
}

#[test]
fn malformed_allowed_signers_lines_are_located_errors() {
    let k = ed25519();
    let good = signer_line("ok@ops", "", &k);
    let text = format!(
        "{good}\nbad@ops\nq@ops namespaces=\"git ssh-ed25519 AAAA\nx@ops frobnicate ssh-ed25519 AAAA\ny@ops ssh-ed25519 notbase64!\nz@ops valid-after=\"2024\" {}\n",
        &good["ok@ops ".len()..]
    );
    match AllowedSigners::parse("signers", &text) {
        Err(SignersError::Invalid(errs)) => {
            let joined = errs.join("\n");
            println!("{joined}");
            assert_eq!(errs.len(), 5, "{joined}");
            assert!(errs[0].starts_with("signers:2: no key"), "{joined}");
            assert!(
                errs[1].starts_with("signers:3: unterminated quote"),
                "{joined}"
            );
            assert!(
                errs[2].starts_with("signers:4: unknown option \"frobnicate\""),
                "{joined}"
            );
            assert!(
                errs[3].starts_with("signers:5: ssh-ed25519 key does not decode"),
                "{joined}"
            );
            assert!(
                errs[4].starts_with("signers:6: timestamp \"2024\""),
                "{joined}"
            );
        }
        other => panic!("{other:?}"),
    }
    // An unsupported key type is a warning, not an error.
    let s = AllowedSigners::parse("s", "a@b sk-ssh-ed25519@openssh.com AAAA\n").unwrap();
    assert!(s.signers.is_empty());
    assert!(s.warnings[0].contains("s:1: key type sk-ssh-ed25519@openssh.com is not supported"));
}
