"""Notifications (issue 5, docs/notifications.md): who hears about an event, what they read on
each channel, and delivering it exactly once to the person.

- `model`: channels, contacts (addresses, locale, opt-outs), messages and their states.
- `recipients`: the decision table: event -> (audience, template).
- `templates`: the words, in Chinese and English, per channel (WeChat subscribe message, SMS of at
  most 70 characters, email).
- `providers`: the sink, and adapters that build the real WeChat and SMS gateway requests.
- `delivery`: the consumer of order and stock events, and the birthday greetings.
- `profiles`: contact details, per-channel opt-out and WeChat consent grants.
"""
