"""Blue-green tracks: which of a plugin's two Deployments its Service selects.

Each plugin runs two tracks, `blue` and `green`. When a plugin's image
changes, the idle track gets the new image and the Service switches to it;
the other track keeps the previous image, so `rollback` switches back
without a rebuild or a redeploy. The state lives in
`.migrate/manifests/tracks.json`; `apply` writes it, `render` and `plan`
only read it and show what `apply` would switch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACKS = ("blue", "green")


@dataclass(frozen=True)
class Track:
    active: str
    images: dict[str, str]  # track -> image

    @property
    def idle(self) -> str:
        return TRACKS[1] if self.active == TRACKS[0] else TRACKS[0]

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, **self.images}


def state_file(state_dir: Path) -> Path:
    return state_dir / "manifests" / "tracks.json"


def load(state_dir: Path) -> dict[str, dict[str, Any]]:
    path = state_file(state_dir)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def save(state_dir: Path, tracks: dict[str, dict[str, Any]]) -> None:
    path = state_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(tracks, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def next_track(current: dict[str, Any] | None, image: str) -> Track:
    """What `apply` makes of a plugin's tracks when it runs `image`.

    First deployment: both tracks run it, blue is active. Same image as the
    active track: nothing changes. A new image: it goes to the idle track,
    which becomes active.
    """
    if not current or current.get("active") not in TRACKS:
        return Track(active="blue", images={"blue": image, "green": image})
    active = str(current["active"])
    images = {t: str(current.get(t) or image) for t in TRACKS}
    if images[active] == image:
        return Track(active=active, images=images)
    idle = TRACKS[1] if active == TRACKS[0] else TRACKS[0]
    return Track(active=idle, images={**images, idle: image})
