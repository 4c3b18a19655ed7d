//! Agent access tokens as Woodpecker's server signs and checks them (`server/rpc/jwt_manager.go`,
//! golang-jwt v5): HS256 over `{"alg":"HS256","typ":"JWT"}` and the claims
//! `{"iss":"woodpecker","sub":"<id>","exp":..,"nbf":..,"iat":..,"jti":"<id>","agent_id":<id>}`
//! (RegisteredClaims in declaration order, the empty audience left out, times as whole
//! seconds), valid for one hour; a token is refused when its signature, `exp` or `nbf` fail.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;

/// The token duration of Woodpecker's JWT manager.
pub const LIFETIME_SECS: i64 = 3600;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `JWTManager.Generate(agentID)` at time `now`.
pub fn generate(secret: &[u8], agent_id: i64, now: i64) -> String {
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let claims = format!(
        r#"{{"iss":"woodpecker","sub":"{agent_id}","exp":{},"nbf":{now},"iat":{now},"jti":"{agent_id}","agent_id":{agent_id}}}"#,
        now + LIFETIME_SECS
    );
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signature = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", B64.encode(signature.as_ref()))
}

/// `JWTManager.Verify`: the agent id of a valid token, or why it is not valid.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<i64, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token is malformed".into());
    };
    let header: serde_json::Value = decode(header)?;
    if header["alg"] != "HS256" {
        return Err("unexpected token signing method".into());
    }
    let signature = B64.decode(signature).map_err(|_| "signature is not base64url")?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let input = &token[..token.len() - token.rsplit('.').next().unwrap().len() - 1];
    hmac::verify(&key, input.as_bytes(), &signature).map_err(|_| "signature is invalid")?;
    let claims: serde_json::Value = decode(claims)?;
    if claims["exp"].as_i64().is_some_and(|exp| now >= exp) {
        return Err("token is expired".into());
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| now < nbf) {
        return Err("token is not valid yet".into());
    }
    claims["agent_id"].as_i64().ok_or_else(|| "no agent_id claim".into())
}

fn decode(part: &str) -> Result<serde_json::Value, String> {
    let bytes = B64.decode(part).map_err(|_| "token part is not base64url")?;
    serde_json::from_slice(&bytes).map_err(|e| format!("token part is not JSON: {e}"))
}

#[test]
fn tokens_verify_and_are_refused_when_tampered_or_expired() {
    let now = 1_767_366_245;
    let token = generate(b"grpc-secret", 7, now);
    assert_eq!(verify(b"grpc-secret", &token, now + 10), Ok(7));
    // Another server's secret, an expired token, a token from the future, tampered claims.
    assert!(verify(b"other", &token, now).is_err());
    assert_eq!(
        verify(b"grpc-secret", &token, now + LIFETIME_SECS).unwrap_err(),
        "token is expired"
    );
    assert!(verify(b"grpc-secret", &token, now - 1).is_err());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = B64.encode(r#"{"agent_id":1,"exp":9999999999}"#);
    assert!(verify(b"grpc-secret", &format!("{}.{forged}.{}", parts[0], parts[2]), now).is_err());
    // The claims are golang-jwt's RegisteredClaims, in their order, then the agent id.
    let claims = String::from_utf8(B64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        claims,
        r#"{"iss":"woodpecker","sub":"7","exp":1767369845,"nbf":1767366245,"iat":1767366245,"jti":"7","agent_id":7}"#
    );
}
