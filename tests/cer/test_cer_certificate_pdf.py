"""The certificate PDF: its Chinese font embedded, its bytes the same for the same content."""

import hashlib
import io

from pypdf import PdfReader

from app.cer import certificates

CONTENT = {
    "certificate_number": "CERT-2026-000001",
    "tonnes": 3,
    "unit": "tCO2e",
    "serials": ["CN-SZ-PHCER-2026-000000001-000000003"],
    "projects": [
        {
            "id": "p",
            "name": "地铁绿色出行项目",
            "owner": "深圳通",
            "period_start": "2026-01-01",
            "period_end": "2026-01-31",
            "methodologies": ["METRO@1"],
        }
    ],
    "beneficiary": {"kind": "event", "name": "深圳马拉松 2026"},
    "purpose": "赛事碳中和",
    "retired_by": {"org_id": "o", "name": "绿色买家有限公司"},
    "retired_on": "2026-02-01",
    "retired_at": "2026-02-01T10:00:00+08:00",
    "verification_url": "http://test/certificates/CERT-2026-000001",
}
SHA = hashlib.sha256(b"content").hexdigest()


class TestCertificatePdf:
    def test_the_chinese_font_is_embedded(self):
        page = PdfReader(io.BytesIO(certificates.render(CONTENT, SHA))).pages[0]
        fonts = {f.get_object()["/BaseFont"]: f.get_object() for f in page["/Resources"]["/Font"].values()}
        cjk = [f for name, f in fonts.items() if name.endswith("+DroidSansFallback")]
        assert len(cjk) == 1 and cjk[0]["/Subtype"] == "/TrueType"
        font_file = cjk[0]["/FontDescriptor"].get_object()["/FontFile2"].get_object()
        assert len(font_file.get_data()) > 1000  # the subset's glyphs, not a name
        assert "STSong-Light" not in fonts

    def test_chinese_and_latin_text_read_back(self):
        text = PdfReader(io.BytesIO(certificates.render(CONTENT, SHA))).pages[0].extract_text()
        for piece in (
            "碳普惠核证减排量注销证明",
            "深圳马拉松",
            "赛事碳中和",
            "绿色买家有限公司",
            "Certificate No.",
            CONTENT["verification_url"],
            SHA,
        ):
            assert piece in text

    def test_two_renders_are_the_same_bytes(self):
        assert certificates.render(CONTENT, SHA) == certificates.render(dict(CONTENT), SHA)

    def test_the_qr_code_is_a_link_to_the_page(self):
        page = PdfReader(io.BytesIO(certificates.render(CONTENT, SHA))).pages[0]
        uris = [a.get_object()["/A"]["/URI"] for a in page["/Annots"]]
        assert uris == ["http://test/certificates/CERT-2026-000001"]
