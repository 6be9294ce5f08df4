"""The extractor's input: a bronze zip's CSV member, read as records in chunks of whole lines.

Part of the extractor Lambda (``handler.py`` in this folder; the modules import each other by
their plain names, as at the root of the Lambda zip). This module knows the file, not the
contract: it opens the zip's one member (:func:`open_member`), cuts the decompressed CSV into
chunks of whole lines in a background thread (:class:`Chunks`), and finds where a record ends
and on which physical line it starts (:class:`NumberedLines`, used by the exact path of
``validate.py``).

Records (RFC 4180 with pyarrow's quoting rules, :func:`_in_quotes`): a field that starts with
``"`` is quoted, ``""`` inside it is a quote, and it may hold delimiters and line breaks, so a
record is one line or, when a quoted field holds line breaks, several. The header is line 1;
every ``\\n`` starts a new line, also inside a quoted field; blank lines between records are
skipped and not counted as rows.
"""

from __future__ import annotations

import io
import queue
import re
import threading
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

#: Bytes of CSV per ``pyarrow.csv`` block (the unit of parallel parsing within a chunk): 1 MiB.
BLOCK_BYTES = 1 << 20
#: Decompressed CSV bytes per chunk, the unit of validation and of memory use: 8 MiB. A chunk
#: holds whole lines (it ends at a line break), so a longer line makes a longer chunk. (4 to 16
#: MiB parse equally fast; the peak RSS grows with it: ~260 MiB at 4 MiB, ~300 at 8, ~350 at 16.)
CHUNK_BYTES = 8 << 20
#: Bytes decompressed per read of the zip member (zipfile buffers about this much).
PIECE_BYTES = 1 << 20
#: Chunks the decompressing thread may hold ready (bounded, so memory stays bounded).
READ_AHEAD = 2
#: Name of the line-number column added while streaming.
LINE_COLUMN = "__line_number"


class BronzeFileError(Exception):
    """A bronze file cannot be loaded at all: the message names the file and the reason.

    :param uri: ``s3://bucket/key`` (or a local path) of the file.
    :param reason: short reason (``corrupt zip``, ``wrong header``, ``empty file``, ``no data rows``,
        ``unreadable csv``, ``manifest mismatch``, ``missing file``, ``missing member``,
        ``unexpected member``, ``missing manifest``, ``bad manifest``).
    :param detail: what exactly was found.
    """

    def __init__(self, uri: str, reason: str, detail: str = "") -> None:
        self.uri = uri
        self.reason = reason
        self.detail = detail
        super().__init__(f"{uri}: {reason}" + (f": {detail}" if detail else ""))


_QUOTE = 0x22  # the byte b'"'
_START, _FIELD, _QUOTED = 0, 1, 2  # at the start of a field, in an unquoted field, in a quoted field


def _separators(delimiter: str) -> re.Pattern:
    """The bytes that end an unquoted field: the delimiter and ``\\r``."""
    return re.compile(b"[" + re.escape(delimiter.encode()) + b"\\r]")


def _in_quotes(line: bytes, in_quote: bool, separators: re.Pattern) -> bool:
    """Whether ``line`` (one physical line, without its ``\\n``) ends inside a quoted field, given
    whether it starts inside one.

    pyarrow's rules (``pyarrow.csv`` with ``quote_char='"'``, ``double_quote=True``, no escape
    character): ``"`` opens a quoted field only at the start of a field; inside it ``""`` is a
    quote and a lone ``"`` closes it, after which the field goes on unquoted (``"ab"cd`` is
    ``abcd``); in an unquoted field ``"`` is an ordinary byte (``12"`` is ``12"``); outside
    quotes a delimiter or a ``\\r`` ends the field. The extractor finds records with this, and
    pyarrow parses them with the same rules, so both agree on where a record ends.
    """
    pos, end = 0, len(line)
    state = _QUOTED if in_quote else _START
    while pos < end:
        if state == _QUOTED:
            pos = line.find(b'"', pos)
            if pos < 0:
                return True
            if pos + 1 < end and line[pos + 1] == _QUOTE:
                pos += 2  # "" is a quote inside the field
            else:
                pos, state = pos + 1, _FIELD
        elif state == _START and line[pos] == _QUOTE:
            pos, state = pos + 1, _QUOTED
        else:
            found = separators.search(line, pos)
            if found is None:
                return False
            pos, state = found.end(), _START
    return state == _QUOTED


class NumberedLines(io.RawIOBase):
    """A read-only byte stream that prefixes every record of ``raw`` with the number of the
    physical line it starts on.

    A record is one line, or several when a quoted field holds line breaks (the quoting rules
    are pyarrow's, :func:`_in_quotes`). The header (line 1) gets the column name
    :data:`LINE_COLUMN`; a record starting on line ``n`` becomes ``b"n<delimiter>" + record``,
    its inner line breaks kept. Blank lines between records are dropped (their numbers are still
    counted); inside a quoted field they are data. Reads ``chunk`` bytes of ``raw`` at a time,
    so memory stays bounded (by the longest record). ``first_line`` is the number of the first
    line of ``raw`` (a chunk of a longer file starts further on).

    :param hold_open: when ``raw`` ends inside a quoted field, keep that last record back as
        :attr:`rest` (its bytes, from its first line to the end) and :attr:`rest_line` (the line
        it starts on): a chunk of a longer file, whose record goes on in the next chunk.
        Otherwise the open record is passed on as it is (pyarrow reads the field to the end).
    :param check_utf8: pass on a record that is not valid UTF-8 with each invalid byte written
        as ``\\xNN`` (``backslashreplace``), and keep its original bytes in :attr:`invalid`
        (line number -> bytes), so one bad row does not make the file unreadable.
    """

    def __init__(self, raw: BinaryIO, delimiter: str = ",", chunk: int = BLOCK_BYTES, first_line: int = 1, *,
                 hold_open: bool = False, check_utf8: bool = False) -> None:
        super().__init__()
        self._raw = raw
        self._delim = delimiter.encode()
        self._separators = _separators(delimiter)
        self._chunk = chunk
        self._hold_open = hold_open
        self._check_utf8 = check_utf8
        self._rest = b""  # the part of a line read but not yet ended by a \n
        self._record: list[bytes] | None = None  # lines of a record whose quoted field is open
        self._record_line = 0
        self._pending = b""
        self._pos = 0
        self._line = first_line - 1
        self._eof = False
        self.bytes_read = 0
        self.rest = b""
        self.rest_line: int | None = None
        self.invalid: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def _numbered(self, number: int, record: bytes) -> bytes:
        if self._check_utf8 and not record.isascii():
            try:
                record.decode("utf-8")
            except UnicodeDecodeError:
                self.invalid[number] = record
                record = record.decode("utf-8", "backslashreplace").encode()
        if number == 1:
            return LINE_COLUMN.encode() + self._delim + record.removeprefix(b"\xef\xbb\xbf")
        return b"%d%b%b" % (number, self._delim, record)

    def _fill(self) -> None:
        data = self._raw.read(self._chunk)
        unterminated = False  # the last line has no \n (the end of raw)
        if data:
            self.bytes_read += len(data)
            lines = (self._rest + data).split(b"\n")
            self._rest = lines.pop()
        else:
            self._eof = True
            lines = [self._rest] if self._rest else []
            unterminated = bool(self._rest)
            self._rest = b""
        out = []
        for line in lines:
            self._line += 1
            if self._record is None:
                if not line.strip(b"\r \t"):
                    continue
                if b'"' in line and _in_quotes(line, False, self._separators):
                    self._record, self._record_line = [line], self._line
                else:
                    out.append(self._numbered(self._line, line))
            else:
                self._record.append(line)
                if not _in_quotes(line, True, self._separators):
                    out.append(self._numbered(self._record_line, b"\n".join(self._record)))
                    self._record = None
        if self._eof and self._record is not None:
            if self._hold_open:
                self.rest = b"\n".join(self._record) + (b"" if unterminated else b"\n")
                self.rest_line = self._record_line
            else:
                out.append(self._numbered(self._record_line, b"\n".join(self._record)))
            self._record = None
        self._pending = b"\n".join(out) + b"\n" if out else b""
        self._pos = 0

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self._pos >= len(self._pending):
            if self._eof:
                return 0
            self._fill()
        n = min(len(buffer), len(self._pending) - self._pos)
        buffer[:n] = self._pending[self._pos : self._pos + n]
        self._pos += n
        return n

class Chunks:
    """Decompress a zip member in a background thread and hand out chunks of whole lines.

    Iterating yields ``(chunk, newlines)``: about ``size`` bytes ending at a ``\\n`` (the last
    chunk may not), and how many ``\\n`` it holds (counted here, off the main thread). At most
    ``ahead`` chunks wait in the queue. A read error (corrupt zip, bad CRC) is raised by the
    iteration. ``bytes_read`` counts decompressed bytes. :meth:`close` stops the thread; call it
    before closing the zip.

    zlib releases the GIL while it inflates, so decompression overlaps parsing and writing.
    """

    def __init__(self, member: BinaryIO, size: int | None = None, ahead: int | None = None) -> None:
        self._member = member
        self._size = size or CHUNK_BYTES
        self._queue: queue.Queue = queue.Queue(maxsize=ahead or READ_AHEAD)
        self._stop = threading.Event()
        self.bytes_read = 0
        self._thread = threading.Thread(target=self._run, name="extractor-unzip", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            pieces: list[bytes] = []  # read but not handed out yet (the last one ends mid-line)
            held = 0
            while not self._stop.is_set():
                piece = self._member.read(PIECE_BYTES)  # small reads keep zipfile's buffers small
                if piece:
                    self.bytes_read += len(piece)
                    pieces.append(piece)
                    held += len(piece)
                    if held < self._size:
                        continue
                    # Cut after the last line break: the chunk is pieces[:i] + the head of pieces[i].
                    for i in range(len(pieces) - 1, -1, -1):
                        cut = pieces[i].rfind(b"\n") + 1
                        if cut:
                            break
                    else:
                        continue  # no line break yet: a line longer than a chunk
                    head, tail = pieces[i][:cut], pieces[i][cut:]
                    chunk = b"".join(pieces[:i] + [head])
                    pieces = ([tail] if tail else []) + pieces[i + 1 :]
                    held = sum(len(p) for p in pieces)
                elif pieces:
                    chunk, pieces = b"".join(pieces), []
                else:
                    break
                if not self._put((chunk, chunk.count(b"\n"))):
                    return
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer, which raises it
            self._put(exc)

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


def open_member(zip_path: Path, member: str, uri: str, dataset: str) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    """Open the bronze zip and find its one file: -> (the open zip, the member's entry).

    :param member: the file the contract expects (``Contract.member_name(day)``).
    :param uri: name of the zip in error messages.
    :param dataset: the contract's name, for error messages.
    :raises BronzeFileError: ``corrupt zip`` (not a zip), ``missing member``, ``unexpected member``
        (any other file: a bronze file is loaded whole), ``empty file`` (the member is 0 bytes).
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BronzeFileError(uri, "corrupt zip", str(exc)) from exc
    files = [name for name in zf.namelist() if not name.endswith("/")]  # folder entries hold nothing
    if member not in files:
        zf.close()
        raise BronzeFileError(uri, "missing member",
                              f"expected {member}, the zip holds " + (f"{files}" if files else "no file"))
    if len(files) > 1:
        zf.close()
        raise BronzeFileError(uri, "unexpected member",
                              f"the zip holds {files}; the contract {dataset} expects {member} alone "
                              f"(a bronze file is loaded whole, nothing in it is ignored)")
    info = zf.getinfo(member)
    if info.file_size == 0:
        zf.close()
        raise BronzeFileError(uri, "empty file", f"{member} is 0 bytes")
    return zf, info
