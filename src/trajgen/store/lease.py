"""The run's lock on object storage: a lease object (``RUN_URL/.lock``).

Taken by conditional create; renewed by a heartbeat thread every quarter of its term by
compare-and-swap on its ETag; given back by writing it expired. A lease whose holder stopped
renewing is taken over, by compare-and-swap, only after it expired (by the taker's clock: the
machines' clocks must agree to well within the term). A holder that loses its lease (stalled
past the term and taken over) learns it at its next renewal and commits nothing more.
"""

from __future__ import annotations

import json
import os
import threading
import time

from trajgen.store.objects import Bucket, ObjectStoreError, PreconditionFailed

LEASE_NAME = ".lock"
LEASE_SECONDS = 60.0  # the term: a killed holder's run can be resumed elsewhere this long after its last renewal


class LeaseHeldError(ObjectStoreError):
    """Another process holds the run's lease."""


def lease_seconds() -> float:
    return float(os.environ.get("TRAJGEN_LEASE_SECONDS", LEASE_SECONDS))


def read_lease(bucket: Bucket) -> dict | None:
    """The lease as its holder last wrote it ({"holder", "expires_unix", ...}), or None when there is none."""
    data = bucket.read(LEASE_NAME)
    return None if data is None else _parse(data)


def live_holder(bucket: Bucket, clock=time.time) -> str | None:
    """Who holds an unexpired lease on the run, or None."""
    lease = read_lease(bucket)
    if lease is None or lease.get("released") or lease["expires_unix"] <= clock():
        return None
    return lease["holder"]


def _parse(data: bytes) -> dict:
    try:
        lease = json.loads(data)
        float(lease["expires_unix"])
        return lease
    except (ValueError, KeyError, TypeError):
        return {"holder": "an unreadable lease", "expires_unix": 0.0}  # taken over like an expired one


class Lease:
    """This process's hold on a run in a bucket (see the module's doc)."""

    def __init__(self, bucket: Bucket, holder: str, seconds: float | None = None, clock=time.time):
        self.bucket, self.holder, self._clock = bucket, holder, clock
        self.seconds = lease_seconds() if seconds is None else seconds
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None  # why the lease is no longer ours
        self.taken_over: str | None = None  # whose expired lease acquire() took over, in a line

    def _doc(self, released: bool = False) -> bytes:
        now = self._clock()
        expires = now if released else now + self.seconds
        doc = {
            "holder": self.holder,
            "expires_unix": round(expires, 3),
            "expires": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires)),
            "seconds": self.seconds,
        }
        return (json.dumps(doc | ({"released": True} if released else {})) + "\n").encode()

    def acquire(self) -> str | None:
        """Take the lease; LeaseHeldError naming the holder when it is live. Returns a line saying whose
        expired lease was taken over, if one was."""
        try:
            self._etag = self.bucket.create(LEASE_NAME, self._doc())
            taken_over = None
        except PreconditionFailed:
            data, etag = self.bucket.read_tagged(LEASE_NAME)
            if data is None or etag is None:  # given back and removed meanwhile: try once more
                self._etag = self.bucket.create(LEASE_NAME, self._doc())
                taken_over = None
            else:
                lease = _parse(data)
                left = lease["expires_unix"] - self._clock()
                if left > 0 and not lease.get("released"):
                    raise LeaseHeldError(
                        f"{self.bucket.url} is in use by {lease['holder']} (its lease runs {left:.0f} s more and is "
                        f"renewed while it works); wait for it to finish (trajgen status {self.bucket.url}) or stop "
                        f"that process first"
                    ) from None
                try:
                    self._etag = self.bucket.replace(LEASE_NAME, self._doc(), etag)
                except PreconditionFailed:
                    holder = (read_lease(self.bucket) or {}).get("holder", "another process")
                    raise LeaseHeldError(
                        f"{self.bucket.url} was just taken by {holder}; wait for it to finish (trajgen status "
                        f"{self.bucket.url}) or stop that process first"
                    ) from None
                taken_over = (
                    None
                    if lease.get("released")
                    else f"took over the lease of {lease['holder']}, which expired {-left:.0f} s ago "
                    f"(it stopped renewing: killed or cut off)"
                )
        self._thread = threading.Thread(target=self._renew_until_stopped, name="trajgen-lease", daemon=True)
        self._thread.start()
        return taken_over

    def renew(self) -> None:
        """Extend the term; on a lost lease, remember why (``lost``) and stop renewing."""
        if self.lost is not None or self._etag is None:
            return
        try:
            self._etag = self.bucket.replace(LEASE_NAME, self._doc(), self._etag)
        except PreconditionFailed:
            holder = (read_lease(self.bucket) or {}).get("holder", "another process")
            self.lost = (
                f"the run's lease was taken over by {holder} (this process stalled past its {self.seconds:.0f} s term)"
            )
        except ObjectStoreError:
            pass  # a passing failure: the next renewal tries again, well within the term

    def check(self) -> None:
        """ObjectStoreError when the lease is lost: nothing more may be committed."""
        if self.lost is not None:
            raise ObjectStoreError(self.lost)

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            self.renew()

    def release(self) -> None:
        """Stop renewing and give the lease back (written expired, so the next taker needs no wait)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost is None and self._etag is not None:
            try:
                self.bucket.replace(LEASE_NAME, self._doc(released=True), self._etag)
            except ObjectStoreError:
                pass  # it expires on its own
        self._etag = None
