"""Check a signed promotion record: ``python -m registry.provenance.verify`` (docs/security.md,
"Verifying what you deploy").

    python -m registry.provenance.verify RECORD.json --public-key registry.pem \\
        [--model-dir ./downloaded-model | --digest sha256:<hex>] \\
        [--expect-to Production] [--expect-approver alice --expect-approver bob]

Exits 0 and prints what the record says when one of its signatures verifies with one of the
public keys (give every key you trust, e.g. the current and the retired ones), its subject is the
digest of the local copy (``--model-dir``: the same sha256 manifest digest the registry records,
over every file but the registry's model signature) or the given ``--digest``, and the
expectations hold; exits 1 with the reason otherwise. Needs only ``cryptography``: run it where
the model is deployed, with the public key obtained out of band, not from the registry being
checked."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from registry.provenance import MLFLOW_CLIENT_META, SIGNATURE_NAME
from registry.provenance.dsse import (
    PROMOTION_PREDICATE_TYPE,
    VerificationError,
    load_public_keys,
    open_envelope,
)

_CHUNK = 1 << 20


def folder_digests(root: Path) -> set[str]:
    """The digests a local copy may have been recorded with: over every file, and, when the
    ``mlflow`` client added its ``registered_model_meta`` to the download, over every file but
    that one (the registry's files may or may not have held one)."""
    digests = {folder_digest(root)}
    if (root / MLFLOW_CLIENT_META).is_file():
        digests.add(folder_digest(root, leave_out=MLFLOW_CLIENT_META))
    return digests


def folder_digest(root: Path, *, leave_out: str = "") -> str:
    """The registry's digest of a folder: sha256 of ``<sha256>  <path>\\n`` per file sorted by
    path (what ``sha256sum`` writes), leaving out the registry's model signature at the top (and
    ``leave_out``)."""
    lines = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in names:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if relative in (SIGNATURE_NAME, leave_out):
                continue
            digest = hashlib.sha256()
            with path.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
            lines.append((relative, digest.hexdigest()))
    text = "".join(f"{sha}  {path}\n" for path, sha in sorted(lines))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def verify_record(
    envelope: bytes,
    public_keys_pem: bytes,
    *,
    digest: str | set[str] | None = None,
    expect_to: str | None = None,
    expect_approvers: list[str] | None = None,
) -> dict[str, Any]:
    """The predicate of a verified record; :class:`VerificationError` saying what failed."""
    try:
        return _verify_record(
            envelope,
            public_keys_pem,
            digest=digest,
            expect_to=expect_to,
            expect_approvers=expect_approvers,
        )
    except (AttributeError, TypeError, KeyError) as exc:
        # Signed, but not shaped like a promotion record.
        raise VerificationError(f"the statement is not a promotion record ({exc!r})") from None


def _verify_record(
    envelope: bytes,
    public_keys_pem: bytes,
    *,
    digest: str | set[str] | None = None,
    expect_to: str | None = None,
    expect_approvers: list[str] | None = None,
) -> dict[str, Any]:
    try:
        keys = load_public_keys(public_keys_pem)
    except ValueError as exc:
        raise VerificationError(f"the public key file: {exc}") from None
    statement = open_envelope(envelope, keys)
    if statement.get("predicateType") != PROMOTION_PREDICATE_TYPE:
        raise VerificationError(
            f"predicateType is {statement.get('predicateType')!r}, not a promotion record"
        )
    predicate = statement.get("predicate")
    subjects = statement.get("subject")
    if not isinstance(predicate, dict) or not isinstance(subjects, list) or not subjects:
        raise VerificationError("the statement has no predicate or no subject")
    subject_digests = {
        "sha256:" + str(subject.get("digest", {}).get("sha256", "")) for subject in subjects
    }
    if predicate.get("artifact_digest") not in subject_digests:
        raise VerificationError("the predicate's artifact_digest is not the subject's digest")
    wanted = {digest} if isinstance(digest, str) else digest
    if wanted is not None and not wanted & subject_digests:
        raise VerificationError(
            f"the record is about {', '.join(sorted(subject_digests))}, not "
            f"{' or '.join(sorted(wanted))}"
        )
    if expect_to is not None:
        reached = (
            predicate.get("to_stage")
            if predicate.get("kind") == "STAGE"
            else f"@{predicate.get('alias')}"
        )
        if reached != expect_to:
            raise VerificationError(f"the record moves to {reached}, not {expect_to}")
    approvers = [approval.get("approver") for approval in predicate.get("approvals") or []]
    missing = [name for name in expect_approvers or [] if name not in approvers]
    if missing:
        raise VerificationError(
            f"not approved by {', '.join(missing)} (approvers: {', '.join(approvers) or 'none'})"
        )
    return predicate


def _summary(predicate: dict[str, Any]) -> str:
    if predicate.get("kind") == "STAGE":
        moved = f"{predicate.get('from_stage')} -> {predicate.get('to_stage')}"
    else:
        moved = f"@{predicate.get('alias')}: {predicate.get('from_version') or '-'} -> "
        moved += str(predicate.get("to_version"))
    approvals = predicate.get("approvals") or []
    lines = [
        f"verified: {predicate.get('model')} version {predicate.get('version')} ({moved})",
        f"  digest:    {predicate.get('artifact_digest')}",
        f"  registry:  {predicate.get('registry')}",
        f"  time:      {predicate.get('time')}",
        f"  applied by {predicate.get('applied_by') or '(the registry)'}",
    ]
    for approval in approvals:
        lines.append(f"  approved by {approval.get('approver')} at {approval.get('approved_at')}")
    lines.append(f"  policy:    {predicate.get('policy')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry.provenance.verify",
        description="Verify a signed promotion record of the model registry.",
    )
    parser.add_argument("record", type=Path, help="the record's DSSE envelope (JSON)")
    parser.add_argument(
        "--public-key",
        type=Path,
        action="append",
        required=True,
        help="a PEM file of public key(s) to trust; repeat for several",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--model-dir", type=Path, help="a local copy of the version's files")
    where.add_argument("--digest", help="the expected digest, sha256:<hex>")
    parser.add_argument("--expect-to", help="the stage, or @alias, the record must move to")
    parser.add_argument(
        "--expect-approver", action="append", default=[], help="a user who must have approved"
    )
    args = parser.parse_args(argv)
    try:
        envelope = args.record.read_bytes()
        pem = b"".join(path.read_bytes() for path in args.public_key)
        digest = folder_digests(args.model_dir) if args.model_dir else args.digest
    except OSError as exc:
        sys.stderr.write(f"FAILED: {exc}\n")
        return 1
    try:
        predicate = verify_record(
            envelope,
            pem,
            digest=digest,
            expect_to=args.expect_to,
            expect_approvers=args.expect_approver,
        )
    except VerificationError as exc:
        sys.stderr.write(f"FAILED: {exc}\n")
        return 1
    sys.stdout.write(_summary(predicate) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
