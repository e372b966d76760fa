"""The output-moderation table: lines a host might say, and whether each must never be heard.

Clean lines include the traps a substring match would block (Scunthorpe, assassin, cocktail,
class, Essex, therapist, Penistone, ...); bad ones are profanity, slurs, threats, self-harm
encouragement, and their leetspeak, spaced-out and look-alike spellings. `OPENAI_ONLY` are
lines the offline checks let through and OpenAI's moderation endpoint (its double, told to
flag `OPENAI_FLAGS`) blocks.
"""

from __future__ import annotations

CLEAN = (
    "Welcome back to the stream, everyone!",
    "Tonight we are looking at the old football ground in Scunthorpe.",
    "The assassin in that film was a master of disguise.",
    "Let me shake you a virtual cocktail while we wait.",
    "That was a real class act from the whole team.",
    "My cousin grew up in Essex, right by the sea.",
    "My therapist says I talk too much about space.",
    "Penistone is a small market town in Yorkshire.",
    "Shiitake mushrooms make a wonderful soup.",
    "Assassin's Creed has some lovely old cities in it.",
    "Turn up the bass guitar and play some classic rock!",
    "Hell yeah, that is the spirit!",
    "Happy pride to everyone celebrating this weekend.",
    "The analyst at the observatory sent me this picture.",
    "Grape juice or orange juice, which one do you prefer?",
    "Fukuoka is lovely in the spring.",
    "I scored 455 points and 1337 combos last night.",
    "Great question, Ada, and my honest answer is that it depends.",
    "Let's talk about what is on screen: the night sky over the hills.",
    "Middlesex and Sussex are old English counties.",
    "The name Ｓｃｕｎｔｈｏｒｐｅ looks very wide in these letters.",
)

BAD = (
    # profanity
    "This is fucking amazing.",
    "What a load of shit that was.",
    "Honestly, that is bullshit.",
    "You absolute motherfucker.",
    "Shut up, you stupid bitch.",
    # slurs
    "Nobody wants a faggot like you here.",
    # threats and self-harm encouragement
    "I will kill you after the show.",
    "You should just kill yourself.",
    "Go die in a fire, chat.",
    "K y s, nobody is watching anyway.",
    # leetspeak and spacing
    "That level was sh1t, honestly.",
    "Well, $h!t happens on live streams.",
    "What an @$$hole move that was.",
    "Stop being such a b1tch about it.",
    "Only a n1gg3r would say that.",
    "Oh f*ck, the stream froze.",
    "Fuuuuuck, that was close.",
    "F u c k this level.",
    # look-alike letters
    "This ｆｕｃｋ level is hard.",
    "What the fυck is that?",
    "That picture is ѕһit.",
    "Oh 𝐟𝐮𝐜𝐤 yes, we did it.",
    "Oh f\u200bu\u200dck, I forgot.",
    # an insult no word list has: the classifier's
    "You are such an idiot.",
)

OPENAI_FLAGS = {"quietly hurt yourself": ("self-harm/instructions", "self-harm")}
"""What the moderation double flags (substring -> categories)."""

OPENAI_ONLY = ("Here is how you can quietly hurt yourself tonight.",)
