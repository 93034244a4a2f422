"""Local stand-ins for Poly Pizza (/polypizza, API v1.1) and ambientCG (/ambientcg, API v2 full_json):
their JSON shapes, with thumbnails, a small real .glb, a zipped texture set and an HDRI to download."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlparse

from tests.fakes import files
from tests.fakes.base import FakeHandler, FakeService

POLYPIZZA_KEY = "pp-test-key"
PIZZA_ID = "5EGWBMpuXq"
MATERIAL_ID = "Ground103"
HDRI_ID = "DayEnvironmentHDRI019"
EVIL_ID = "Evil001"


class FakeLibraries(FakeService):
    def __init__(self) -> None:
        self.blobs = {
            f"{PIZZA_ID}.glb": files.glb_triangle("OakTree"),
            "thumb.png": files.png(24, 16),
            f"{MATERIAL_ID}_1K-JPG.zip": files.zip_of({
                f"{MATERIAL_ID}_1K-JPG_Color.png": files.png(rgb=(120, 90, 60)),
                f"{MATERIAL_ID}_1K-JPG_Roughness.png": files.png(rgb=(200, 200, 200)),
                f"{MATERIAL_ID}_1K-JPG_NormalGL.png": files.png(rgb=(128, 128, 255)),
                f"{MATERIAL_ID}_1K-JPG_NormalDX.png": files.png(rgb=(128, 128, 255)),
                f"{MATERIAL_ID}_1K-JPG_Displacement.png": files.png(rgb=(90, 90, 90)),
                f"{MATERIAL_ID}.usdc": b"not used"}),
            f"{HDRI_ID}_1K-HDR.hdr": files.hdr(),
            f"{EVIL_ID}_1K-JPG.zip": files.zip_of({"../../../../tmp/blender_mcp_acg_pwned.txt": b"x"}),
        }
        self.served: list[str] = []
        self.ranges: list[str] = []
        super().__init__()

    def pizza(self, model_id: str, title: str) -> dict:
        return {"ID": model_id, "Title": title, "Attribution": f"{title} by someartist [CC-BY] via Poly Pizza",
                "Description": "A simple low poly model", "Creator": {"Username": "someartist",
                                                                      "DPURL": "https://poly.pizza/u/someartist"},
                "Thumbnail": f"{self.url}/dl/thumb.png", "Download": f"{self.url}/dl/{model_id}.glb",
                "Tri Count": 1, "Category": "Nature", "Tags": ["tree", "nature"], "Licence": "CC-BY 3.0",
                "Animated": False}

    def acg(self, asset_id: str, kind: str, attribute: str, file_name: str, downloads: bool) -> dict:
        asset = {"assetId": asset_id, "displayName": asset_id, "dataType": kind, "tags": ["ground", "dirt"],
                 "releaseDate": "2024-01-01 17:00:00", "downloadCount": 1000,
                 "previewImage": {"64-PNG": f"{self.url}/dl/thumb.png", "128-PNG": f"{self.url}/dl/thumb.png",
                                  "1024-JPG-FFFFFF": f"{self.url}/dl/missing.jpg"}}
        if downloads:
            blob = self.blobs[file_name]
            asset["downloadFolders"] = {"default": {"title": "Normal Resolution", "downloadFiletypeCategories": {
                "zip" if file_name.endswith(".zip") else "hdr": {"title": "ZIP", "downloads": [
                    {"fullDownloadPath": f"{self.url}/dl/{file_name}", "downloadLink": f"{self.url}/dl/{file_name}",
                     "fileName": file_name, "size": len(blob), "attribute": attribute, "filetype": "zip"},
                    {"downloadLink": f"{self.url}/dl/none.zip", "fileName": "x_2K-PNG.zip", "size": 1,
                     "attribute": "2K-PNG", "filetype": "zip"}]}}}}
        return asset

    def handler(self):
        fake = self

        class Handler(FakeHandler):
            def do_GET(self):
                url = urlparse(self.path)
                parts = [unquote(p) for p in url.path.split("/") if p]
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts[:1] == ["dl"] and len(parts) == 2 and parts[1] in fake.blobs:
                    fake.served.append(parts[1])
                    fake.ranges.append(self.headers.get("Range") or "")
                    return self._send_file(fake.blobs[parts[1]])
                if parts[:1] == ["polypizza"]:
                    if self.headers.get("X-Auth-Token") != POLYPIZZA_KEY:
                        return self._json({"error": "Unauthorized"}, 401)
                    if len(parts) == 3 and parts[1] == "search":
                        hits = [fake.pizza(PIZZA_ID, f"Oak {parts[2]}"), fake.pizza("Other01", "Pine")]
                        return self._json({"total": len(hits), "results": hits[:int(query.get("Limit", 12))]})
                    if len(parts) == 3 and parts[1] == "model" and parts[2] == PIZZA_ID:
                        return self._json(fake.pizza(PIZZA_ID, "Oak Tree"))
                    return self._json({"error": "Not found"}, 404)
                if parts == ["ambientcg", "full_json"]:
                    with_downloads = "downloadData" in query.get("include", "")
                    assets = [fake.acg(MATERIAL_ID, "Material", "1K-JPG", f"{MATERIAL_ID}_1K-JPG.zip", with_downloads),
                              fake.acg(HDRI_ID, "HDRI", "1K-HDR", f"{HDRI_ID}_1K-HDR.hdr", with_downloads),
                              fake.acg(EVIL_ID, "Material", "1K-JPG", f"{EVIL_ID}_1K-JPG.zip", with_downloads)]
                    if "id" in query:
                        assets = [a for a in assets if a["assetId"] == query["id"]]
                    if "type" in query:
                        assets = [a for a in assets if a["dataType"] == query["type"]]
                    if "q" in query:
                        assets = [a for a in assets if query["q"].lower() in " ".join(
                            [a["assetId"], *a["tags"]]).lower()]
                    start, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
                    return self._json({"searchQuery": query, "numberOfResults": len(assets), "nextPageHttp": None,
                                       "foundAssets": assets[start:start + limit]})
                return self._json({"error": "not found"}, 404)

        return Handler
