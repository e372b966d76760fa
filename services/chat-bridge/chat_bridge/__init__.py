"""Livestage chat-bridge: follows a show's YouTube Live and Twitch chat and publishes each message
on `chat.submitted.<room>` like page chat (see `app`)."""
