"""Verifies a Palaver access token the way another service would: with a
stock JWT library (PyJWT) and nothing but the node's JWKS document.

    verify_token.py BASE_URL ACCESS_TOKEN ALGORITHM ISSUER AUDIENCE USER_ID
"""
import sys

import jwt

base, token, algorithm, issuer, audience, user_id = sys.argv[1:]
keys = jwt.PyJWKClient(base + "/.well-known/jwks.json")
signing_key = keys.get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    signing_key,
    algorithms=[algorithm],
    issuer=issuer,
    audience=audience,
    options={"require": ["exp", "iat", "sub", "iss", "aud"]},
)
assert claims["sub"] == user_id, claims
assert jwt.get_unverified_header(token)["alg"] == algorithm

# Anything else signed with the key's algorithm but not the key is refused.
forged = token[:-12] + ("A" if token[-12] != "A" else "B") + token[-11:]
try:
    jwt.decode(forged, signing_key, algorithms=[algorithm], issuer=issuer, audience=audience)
except jwt.InvalidSignatureError:
    pass
else:
    sys.exit("a forged signature verified")
try:
    jwt.decode(token, signing_key, algorithms=[algorithm], issuer=issuer, audience="someone else")
except jwt.InvalidAudienceError:
    pass
else:
    sys.exit("a token for another audience verified")
print(f"{algorithm} token of user {user_id} verified with PyJWT from the JWKS document")
