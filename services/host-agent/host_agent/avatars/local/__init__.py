"""The local avatar: a drawn host (`avatar-host`) made with the livekit-agents avatar machinery.

    from host_agent.avatars.local import LocalAvatarSession
    avatar = LocalAvatarSession.from_settings()   # HOST_AVATAR_*, LIVEKIT_*
    await avatar.start(session, ctx.room)         # before session.start(...)

- `face.py`: the drawing (pure numpy/Pillow), `motion.py`: blinks and idle motion,
  `mouth.py`: audio to mouth shapes (all pure);
- `generator.py`: the `VideoGenerator` that keeps face and voice in step;
- `session.py`: the participant itself (`LocalAvatarSession`, `start_local_avatar`);
- `backend.py`: `LocalAvatarBackend`, the `local` member of `host_agent.avatars.AVATARS`.
"""

from .backend import LocalAvatarBackend
from .face import FaceRenderer, FaceState, MouthShape, Viseme
from .session import PROVIDER, LocalAvatar, LocalAvatarSession, shared_renderer, start_local_avatar

__all__ = [
    "PROVIDER",
    "FaceRenderer",
    "FaceState",
    "LocalAvatar",
    "LocalAvatarBackend",
    "LocalAvatarSession",
    "MouthShape",
    "Viseme",
    "shared_renderer",
    "start_local_avatar",
]
