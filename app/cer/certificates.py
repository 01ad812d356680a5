"""The retirement certificate (碳中和证明, SZ 19): a one-page PDF with a QR code to its public page.

The certificate states its ``content`` (number, tonnes, serial ranges, projects, methodologies,
beneficiary, purpose, date); the SHA-256 printed on it is over that content's canonical JSON, the
same hash ``GET /v1/public/certificates/{number}`` serves, so anyone holding the paper can check
it. The PDF is rendered with reportlab's invariant mode (no timestamps, fixed document id), so
the same content always gives the same bytes. Chinese text uses Droid Sans Fallback, a TrueType font
shipped in ``app/cer/fonts`` and embedded (subset to the characters drawn), so readers without
Chinese fonts show it too; ASCII text uses Helvetica.
"""

import hashlib
import io
from pathlib import Path
from typing import Any

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

CJK = "DroidSansFallback"
CJK_FILE = Path(__file__).parent / "fonts" / "DroidSansFallback.ttf"
LATIN = "Helvetica"
_registered = False

BENEFICIARY_KINDS = {"event": "活动 Event", "organization": "组织 Organisation", "person": "个人 Person"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(TTFont(CJK, str(CJK_FILE)))
        _registered = True


def _font_for(ch: str) -> str:
    """Helvetica for the characters it has (Latin-1), the CJK font for the rest (it has no Latin letters)."""
    return LATIN if ord(ch) < 0x100 or ch in "–—‘’“”•…" else CJK


def _runs(text: str) -> list[tuple[str, str]]:
    """``text`` cut into pieces of one font each: ``[(font, piece), ...]``."""
    runs: list[tuple[str, str]] = []
    for ch in text:
        font = _font_for(ch)
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + ch)
        else:
            runs.append((font, ch))
    return runs


def _width(text: str, size: float) -> float:
    return sum(pdfmetrics.stringWidth(piece, font, size) for font, piece in _runs(text))


def _draw(canvas: Canvas, x: float, y: float, text: str, size: float) -> None:
    """Draw mixed Chinese and Latin text, each piece in its font."""
    for font, piece in _runs(text):
        canvas.setFont(font, size)
        canvas.drawString(x, y, piece)
        x += pdfmetrics.stringWidth(piece, font, size)


def _lines(text: str, size: float, width: float) -> list[str]:
    if all(_font_for(ch) == LATIN for ch in text):
        return simpleSplit(text, LATIN, size, width) or [""]
    # CJK text has no spaces to break at: cut by measured width
    lines, line = [], ""
    for ch in text:
        if _width(line + ch, size) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line]


def _qr(canvas: Canvas, url: str, x: float, y: float, size: float) -> None:
    """Draw the QR code of ``url`` as vector squares (no image library involved)."""
    code = segno.make(url, error="m")
    matrix = code.matrix
    n = len(matrix) + 8  # 4 modules of quiet zone on each side
    cell = size / n
    canvas.setFillColorRGB(0, 0, 0)
    for row, line in enumerate(matrix):
        for column, dark in enumerate(line):
            if dark:
                canvas.rect(
                    x + (column + 4) * cell, y + size - (row + 5) * cell, cell, cell, stroke=0, fill=1
                )


def render(content: dict[str, Any], content_sha256: str) -> bytes:
    _fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=0)
    canvas.setTitle(f"CER retirement certificate {content['certificate_number']}")
    canvas.setAuthor("Carbon inclusion platform")
    width, height = A4
    left, right = 22 * mm, width - 22 * mm
    y = height - 30 * mm

    title = "碳普惠核证减排量注销证明"
    _draw(canvas, (width - _width(title, 20)) / 2, y, title, 20)
    y -= 9 * mm
    canvas.setFont(LATIN, 13)
    canvas.drawCentredString(width / 2, y, "Certificate of Retirement of Certified Emission Reductions")
    y -= 14 * mm

    beneficiary = content["beneficiary"]
    rows: list[tuple[str, str]] = [
        ("证书编号 Certificate No.", content["certificate_number"]),
        ("注销数量 Tonnes retired", f"{content['tonnes']} tCO2e"),
        ("受益方 Beneficiary", beneficiary["name"]),
        ("受益方类型 Beneficiary type", BENEFICIARY_KINDS.get(beneficiary["kind"], beneficiary["kind"])),
        ("用途 Purpose", content["purpose"]),
        ("注销方 Retired by", content["retired_by"]["name"]),
        ("注销日期 Date", content["retired_on"]),
    ]
    for p in content["projects"]:
        rows.append(("项目 Project", f"{p['name']} ({p['owner']}, {p['period_start']} – {p['period_end']})"))
        rows.append(("方法学 Methodology", ", ".join(p["methodologies"])))
    rows += [("序列号 Serial numbers", s) for s in content["serials"]]

    label_width = 58 * mm
    value_width = right - left - label_width
    for label, value in rows:
        _draw(canvas, left, y, label, 9.5)
        for line in _lines(value, 10, value_width):
            _draw(canvas, left + label_width, y, line, 10)
            y -= 5.5 * mm
        y -= 1.5 * mm
        if y < 80 * mm:  # a very long list of serials: the rest is on the public page
            canvas.setFont(LATIN, 9)
            canvas.drawString(left + label_width, y, "(continued at the verification URL)")
            y -= 6 * mm
            break

    qr_size = 42 * mm
    qr_y = 22 * mm
    _qr(canvas, content["verification_url"], right - qr_size, qr_y, qr_size)
    canvas.linkURL(content["verification_url"], (right - qr_size, qr_y, right, qr_y + qr_size), relative=0)
    text_y = qr_y + qr_size - 4 * mm
    _draw(canvas, left, text_y, "验证 Verify this certificate:", 9.5)
    canvas.setFont(LATIN, 8.5)
    for line in simpleSplit(content["verification_url"], LATIN, 8.5, right - left - qr_size - 6 * mm):
        text_y -= 5 * mm
        canvas.drawString(left, text_y, line)
    text_y -= 8 * mm
    _draw(canvas, left, text_y, "内容哈希 SHA-256 of the content:", 9.5)
    canvas.setFont("Courier", 7.5)
    text_y -= 5 * mm
    canvas.drawString(left, text_y, content_sha256)
    canvas.setFont(LATIN, 7)
    canvas.drawString(
        left,
        14 * mm,
        "The hash is SHA-256 over the certificate content as canonical JSON (sorted keys, UTF-8).",
    )
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
