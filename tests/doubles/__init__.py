"""Local, protocol-faithful doubles of the paid APIs, for tests and benchmarks.

- ``openai_realtime.OpenAIRealtimeDouble``: the OpenAI Realtime WebSocket API (GA events);
- ``openai_chat.OpenAIChatDouble``: OpenAI-compatible ``/v1/chat/completions`` and
  ``/v1/audio/speech``;
- ``anam.AnamDouble``: Anam's ``/v1/engine/session`` plus an avatar that joins the LiveKit room;
- ``openai_moderation``: OpenAI's ``/v1/moderations`` (the moderation service's optional check);
- ``gemini.GeminiDouble``: Gemini's ``generateContent`` (text, images, Google Search grounding);
- ``searxng.SearxngDouble``: a SearXNG instance's JSON search API;
- ``youtube.YouTubeDouble``: the YouTube Data API v3 live chat endpoints and Google's OAuth
  token endpoint (chat-bridge).

Shared: ``base`` (server lifecycle, request log, ``Fault``), ``audio`` (speech-like audio and
containers), ``room`` (an agent in a fake job, a recording viewer). ``README.md`` beside this file
lists what each real plugin raises when a double fails.
"""
