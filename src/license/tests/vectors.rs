//! The official PASETO v4 and PASERK test vectors (github.com/paseto-standard/test-vectors,
//! `v4.json` and `PASERK/k4.pid.json`): our signing gives the vectors' tokens byte for byte
//! (Ed25519 is deterministic), our verification accepts them and refuses the failing ones, and
//! our key ids are the vectors' `k4.pid`s.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
use pasetors::version4::V4;

use super::super::builtin::verify_raw;
use super::*;

/// 4-S-1 .. 4-S-3 share one key pair.
const PUBLIC: &str = "1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2";
const SECRET: &str = "b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774\
                      1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2";
const PAYLOAD: &str = r#"{"data":"this is a signed message","exp":"2022-01-01T00:00:00+00:00"}"#;
const FOOTER: &str = r#"{"kid":"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"}"#;

const S1: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9bg_XBBzds8lTZShVlwwKSgeKpLT3yukTw6JUz3W4h_ExsQV-P0V54zemZDcAxFaSeef1QlXEFtkqxT1ciiQEDA";
const S2: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9v3Jt8mx_TdM2ceTGoqwrh4yDFn0XsHvvV_D0DtwQxVrJEBMl0F2caAdgnpKlt4p7xBnx1HcO-SPo8FPp214HDw.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";
/// Signed with the implicit assertion `{"test-vector":"4-S-3"}`, which license keys never use.
const S3: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9NPWciuD3d0o5eXJXG5pJy-DiVEoyPYWs1YSTwWHNJq6DZD3je5gf-0M4JR9ipdUSJbIovzmBECeaWmaqcaP0DQ.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";
/// 4-F-1: a v4.local token offered as public.
const F1: &str = "v4.local.vngXfCISbnKgiP6VWGuOSlYrFYU300fy9ijW33rznDYgxHNPwWluAY2Bgb0z54CUs6aYYkIJ-bOOOmJHPuX_34Agt_IPlNdGDpRdGNnBz2MpWJvB3cttheEc1uyCEYltj7wBQQYX.YXJiaXRyYXJ5LXN0cmluZy10aGF0LWlzbid0LWpzb24";
/// 4-F-2: a v4.public token that must not verify under the local key given as `key`.
const F2: &str = "v4.public.eyJpbnZhbGlkIjoidGhpcyBzaG91bGQgbmV2ZXIgZGVjb2RlIn22Sp4gjCaUw0c7EH84ZSm_jN_Qr41MrgLNu5LIBCzUr1pn3Z-Wukg9h3ceplWigpoHaTLcwxj0NsI1vjTh67YB.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";
const F2_KEY: &str = "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f";

fn vector_key() -> SigningKey {
    let secret = AsymmetricSecretKey::<V4>::from(&hex::decode(SECRET).unwrap()).unwrap();
    SigningKey::from_secret(secret).unwrap()
}

fn public(hex_key: &str) -> AsymmetricPublicKey<V4> {
    AsymmetricPublicKey::<V4>::from(&hex::decode(hex_key).unwrap()).unwrap()
}

#[test]
fn our_signing_gives_the_vectors_tokens() {
    let key = vector_key();
    assert_eq!(key.sign_raw(PAYLOAD.as_bytes(), b"").unwrap(), S1, "4-S-1");
    assert_eq!(
        key.sign_raw(PAYLOAD.as_bytes(), FOOTER.as_bytes()).unwrap(),
        S2,
        "4-S-2"
    );
    // The secret key as PASERK reads back to the same key (what a key file holds).
    let paserk = key.secret_paserk().unwrap();
    let again = SigningKey::from_paserk(&paserk).unwrap();
    assert_eq!(again.sign_raw(PAYLOAD.as_bytes(), b"").unwrap(), S1);
    assert_eq!(
        key.public().paserk,
        format!(
            "k4.public.{}",
            URL_SAFE_NO_PAD.encode(hex::decode(PUBLIC).unwrap())
        )
    );
}

#[test]
fn our_verification_accepts_the_vectors_and_refuses_the_failing_ones() {
    let pk = public(PUBLIC);
    let (payload, footer) = verify_raw(&pk, S1).unwrap();
    assert_eq!((payload.as_str(), footer.as_slice()), (PAYLOAD, &b""[..]));
    let (payload, footer) = verify_raw(&pk, S2).unwrap();
    assert_eq!(
        (payload.as_str(), footer.as_slice()),
        (PAYLOAD, FOOTER.as_bytes())
    );
    // 4-S-3 is valid only with its implicit assertion; without one it must fail.
    assert_eq!(verify_raw(&pk, S3).unwrap_err(), InvalidKey::Signature);
    assert_eq!(verify_raw(&pk, F1).unwrap_err(), InvalidKey::NotV4Public);
    assert!(verify_raw(&public(F2_KEY), F2).is_err(), "4-F-2");

    // Through `verify`: a vector's footer kid is not a PASERK id of this key, and a vector's
    // payload is not a license key's claims.
    let info = vector_key().public().clone();
    assert!(matches!(
        invalid(verify(S2, &info)),
        InvalidKey::OtherKey { kid, .. } if kid == "zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"
    ));
    assert_eq!(invalid(verify(S1, &info)), InvalidKey::NoFooter);
}

#[test]
fn key_ids_are_the_paserk_pid_vectors() {
    for (name, key, pid) in [
        (
            "k4.pid-1",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "k4.pid.S_XQmeEwHbbvRmiyfXfHYpLGjXGzjTRSDoT1YtTakWFE",
        ),
        (
            "k4.pid-2",
            "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f",
            "k4.pid.9ShR3xc8-qVJ_di0tc9nx0IDIqbatdeM2mqLFBJsKRHs",
        ),
        (
            "k4.pid-3",
            "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e90",
            "k4.pid.-nyvbaTz8U6TQz7OZWW-iB3va31iAxIpUgzUcVQVmW9A",
        ),
    ] {
        let paserk = format!(
            "k4.public.{}",
            URL_SAFE_NO_PAD.encode(hex::decode(key).unwrap())
        );
        let info = PublicKeyInfo::parse(&paserk).unwrap();
        assert_eq!(info.pid, pid, "{name}");
    }
    // k4.pid-fail-1: a short public key must fail.
    let short = "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e";
    let paserk = format!(
        "k4.public.{}",
        URL_SAFE_NO_PAD.encode(hex::decode(short).unwrap())
    );
    assert!(PublicKeyInfo::parse(&paserk).is_err());
}
