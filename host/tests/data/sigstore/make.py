"""Makes the test Sigstore PKI of `supply::sigstore`'s tests: a Fulcio-like
root and intermediate (P-384), a 10-minute code-signing leaf (P-256), a
leaf of the same key from a CA nobody trusts, and a Rekor-like log key
(P-256), with a trusted_root.json naming the first CA and the log; and
npm's attestations document for ../registry/namespace-test-1.0.0.tgz (an
SLSA provenance bundle, v0.3, as npm publishing makes one) and PyPI's
PEP 740 provenance of ../registry/mcp_server_time-0.5.1-py3-none-any.whl,
each signed by the leaf and logged in a `dsse` 0.0.1 entry with the log's
signed entry timestamp.

Run from this directory with a Python that has `cryptography`:
    ../../../../tests/clients/.venv/bin/python make.py
"""
import base64, datetime, hashlib, json
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(2020, 1, 1, tzinfo=UTC)
LONG = datetime.datetime(2040, 1, 1, tzinfo=UTC)
# The leaf lives 10 minutes, as Fulcio's do; the tests' log time is inside.
LEAF_FROM = datetime.datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
LEAF_TO = LEAF_FROM + datetime.timedelta(minutes=10)
SOURCE = "https://github.com/example/pkg/.github/workflows/publish.yml@refs/tags/v1.0.0"
ISSUER = "https://token.actions.githubusercontent.com"
REPOSITORY = "https://github.com/example/pkg"


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mcpod test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca(subject, key, issuer, issuer_key, path_len):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer)).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(EPOCH).not_valid_after(LONG)
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if path_len == 0:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return b.sign(issuer_key, hashes.SHA384())


def leaf(key, issuer, issuer_key):
    return (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(issuer.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(LEAF_FROM).not_valid_after(LEAF_TO)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(SOURCE)]), critical=True)
            # Fulcio's own extensions: the OIDC issuer (v2) and the source
            # repository, each a DER UTF8String.
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), utf8(ISSUER)), critical=False)
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.12"), utf8(REPOSITORY)), critical=False)
            .sign(issuer_key, hashes.SHA384()))


def utf8(text):
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def pkcs8(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


root_key, mid_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
root = ca("test-fulcio", root_key, "test-fulcio", root_key, 1)
mid = ca("test-fulcio-intermediate", mid_key, "test-fulcio", root_key, 0)
leaf_key = ec.generate_private_key(ec.SECP256R1())
other_root_key = ec.generate_private_key(ec.SECP384R1())
other_root = ca("nobody-trusts-this", other_root_key, "nobody-trusts-this", other_root_key, 0)
log_key = ec.generate_private_key(ec.SECP256R1())
log_spki = log_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

open("leaf.der", "wb").write(der(leaf(leaf_key, mid, mid_key)))
open("untrusted_leaf.der", "wb").write(der(leaf(leaf_key, other_root, other_root_key)))
open("leaf_key.der", "wb").write(pkcs8(leaf_key))
open("log_key.der", "wb").write(pkcs8(log_key))
b64 = lambda b: base64.b64encode(b).decode()
root_doc = {
    "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "tlogs": [{
        "baseUrl": "https://rekor.test",
        "hashAlgorithm": "SHA2_256",
        "publicKey": {"rawBytes": b64(log_spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": "2021-01-01T00:00:00Z"}},
        "logId": {"keyId": b64(hashlib.sha256(log_spki).digest())},
    }],
    "certificateAuthorities": [{
        "subject": {"organization": "mcpod test", "commonName": "test-fulcio"},
        "uri": "https://fulcio.test",
        "certChain": {"certificates": [{"rawBytes": b64(der(mid))}, {"rawBytes": b64(der(root))}]},
        "validFor": {"start": "2021-01-01T00:00:00Z"},
    }],
}
json.dump(root_doc, open("trusted_root.json", "w"), indent=1)


# Statements signed as Sigstore signs them: a DSSE envelope by the leaf,
# logged in a `dsse` 0.0.1 entry with the log's signed entry timestamp.
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
IN_TOTO = "application/vnd.in-toto+json"
LEAF_DER = open("leaf.der", "rb").read()
LOG_ID = hashlib.sha256(log_spki).digest()


def signed(statement):
    payload = json.dumps(statement, separators=(",", ":")).encode()
    pae = b"DSSEv1 %d %s %d " % (len(IN_TOTO), IN_TOTO.encode(), len(payload)) + payload
    sig = b64(leaf_key.sign(pae, ECDSA(hashes.SHA256())))
    pem = "-----BEGIN CERTIFICATE-----\n" + b64(LEAF_DER) + "\n-----END CERTIFICATE-----\n"
    body = {"apiVersion": "0.0.1", "kind": "dsse", "spec": {
        "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
        "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
        "signatures": [{"signature": sig, "verifier": b64(pem.encode())}]}}
    body_b64 = b64(json.dumps(body, separators=(",", ":")).encode())
    integrated = int((LEAF_FROM + datetime.timedelta(minutes=5)).timestamp())
    promise = '{"body":"%s","integratedTime":%d,"logID":"%s","logIndex":42}' % (body_b64, integrated, LOG_ID.hex())
    entry = {
        "logIndex": "42", "logId": {"keyId": b64(LOG_ID)},
        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
        "integratedTime": str(integrated),
        "inclusionPromise": {"signedEntryTimestamp": b64(log_key.sign(promise.encode(), ECDSA(hashes.SHA256())))},
        "canonicalizedBody": body_b64}
    return b64(payload), sig, entry


def statement(name, algorithm, digest, predicate_type, predicate):
    return {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": name, "digest": {algorithm: digest}}],
            "predicateType": predicate_type, "predicate": predicate}


# npm's attestations document for @isaacs/namespace-test@1.0.0 (bundle v0.3).
tgz = open("../registry/namespace-test-1.0.0.tgz", "rb").read()
payload, sig, entry = signed(statement(
    "pkg:npm/%40isaacs/namespace-test@1.0.0", "sha512", hashlib.sha512(tgz).hexdigest(), "https://slsa.dev/provenance/v1",
    {"buildDefinition": {"externalParameters": {"workflow": {
        "repository": "https://github.com/example/pkg", "path": ".github/workflows/publish.yml", "ref": "refs/tags/v1.0.0"}}}}))
bundle = {
    "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
    "verificationMaterial": {"certificate": {"rawBytes": b64(LEAF_DER)}, "tlogEntries": [entry],
                             "timestampVerificationData": {"rfc3161Timestamps": []}},
    "dsseEnvelope": {"payload": payload, "payloadType": IN_TOTO, "signatures": [{"sig": sig, "keyid": ""}]},
}
json.dump({"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": bundle}]},
          open("namespace-test-provenance.json", "w"), indent=1)

# PyPI's PEP 740 provenance of the real wheel mcp_server_time-0.5.1 (a
# trusted-publisher upload attestation).
WHEEL = "mcp_server_time-0.5.1-py3-none-any.whl"
whl = open("../registry/" + WHEEL, "rb").read()
payload, sig, entry = signed(statement(
    WHEEL, "sha256", hashlib.sha256(whl).hexdigest(), "https://docs.pypi.org/attestations/publish/v1", None))
json.dump({"version": 1, "attestation_bundles": [{
    "publisher": {"kind": "GitHub", "repository": "example/pkg", "workflow": "release.yml", "environment": "pypi"},
    "attestations": [{"version": 1,
                      "verification_material": {"certificate": b64(LEAF_DER), "transparency_entries": [entry]},
                      "envelope": {"statement": payload, "signature": sig}}]}]},
          open("mcp-server-time-provenance.json", "w"), indent=1)
