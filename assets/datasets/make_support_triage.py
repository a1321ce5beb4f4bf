"""Generate the support-ticket triage sample dataset shipped with LoRA Studio.

Each example is a customer message to "Nimbus Home", a fictional smart-home
company, and a one-line triage answer::

    category: billing | priority: high | team: payments | summary: Customer was charged twice for order #48213.

Messages are assembled from hand-written templates (several phrasings per intent)
filled with products, order numbers, dates and names, then dressed with a random
greeting, tone, sign-off and the occasional typo. Output is deterministic for a
given seed. The last phrasing of every intent, and one of the legal-threat
sentences, are used only in the eval split, so every eval message is a phrasing
the model never saw in training.

Usage: python assets/datasets/make_support_triage.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TEAMS: dict[str, str] = {
    "billing": "payments",
    "shipping": "logistics",
    "returns": "warehouse",
    "account": "accounts",
    "technical": "engineering",
    "product-question": "sales",
}
CATEGORIES: tuple[str, ...] = tuple(TEAMS)
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")
MAX_SUMMARY_WORDS = 15

SYSTEM_PROMPT = (
    "Triage this Nimbus Home support message. Reply with one line:\n"
    "category: <category> | priority: <priority> | team: <team> | summary: <at most 15 words>\n"
    "Category -> team: billing -> payments, shipping -> logistics, returns -> warehouse, account -> accounts, "
    "technical -> engineering, product-question -> sales.\n"
    "Priority: urgent = safety hazard, legal threat, hacked account or outage; high = money lost or product unusable; "
    "medium = delay or inconvenience; low = question, request or feedback."
)


@dataclass(frozen=True)
class Intent:
    """One kind of ticket: its labels and (message, summary) template pairs.

    The last pair is held out for the eval split. ``escalatable`` intents may get
    a legal threat appended, which makes them urgent.
    """

    name: str
    category: str
    priority: str
    weight: float
    templates: tuple[tuple[str, str], ...]
    escalatable: bool = False


INTENTS: tuple[Intent, ...] = (
    # --- billing -> payments -------------------------------------------------
    Intent(
        "double_charge",
        "billing",
        "high",
        1.2,
        (
            (
                "I was charged twice for order {order}. There are two identical payments of {price} on my card statement.",
                "Customer was charged twice for order {order_id}.",
            ),
            (
                "My bank shows two charges of {price} for the same {product}. I only placed one order.",
                "Customer was billed twice for one {product}.",
            ),
            (
                "You took the money for order {order} twice!! I need the duplicate payment refunded.",
                "Customer was charged twice for order {order_id} and wants a refund.",
            ),
            (
                "Looks like my card got billed two times for my {product} on {date}. Can you refund one of them?",
                "Customer was billed twice for the {product} on {date}.",
            ),
            (
                (
                    "There are two {price} payments to Nimbus Home on my credit card from {date}, "
                    "but I only bought one {product}."
                ),
                "Customer has two {price} charges for a single {product}.",
            ),
            (
                (
                    "Got a double charge for order {order}: same amount, same day, two transactions. "
                    "Please reverse the extra one."
                ),
                "Customer was double charged for order {order_id}.",
            ),
        ),
        escalatable=True,
    ),
    Intent(
        "charged_after_cancel",
        "billing",
        "high",
        1.0,
        (
            (
                "I cancelled my Nimbus Plus subscription on {date} but I was still charged {price} this month.",
                "Customer was charged for Nimbus Plus after cancelling on {date}.",
            ),
            (
                "I cancelled order {order} before it shipped and you still took the payment.",
                "Customer was charged for cancelled order {order_id}.",
            ),
            (
                "Why am I still paying for Nimbus Plus? I cancelled it weeks ago and another charge just came through.",
                "Customer still billed for Nimbus Plus after cancelling.",
            ),
            (
                "Order {order} was cancelled (I have the confirmation email) but my card was charged {price} anyway.",
                "Customer was charged {price} for cancelled order {order_id}.",
            ),
            (
                "I ended my subscription on {date}. Today there's a new Nimbus Plus charge on my card. Please refund it.",
                "Customer was charged for Nimbus Plus after ending it on {date}.",
            ),
            (
                "My cancellation went through on {date}, yet the subscription fee was taken again. I want that money back.",
                "Customer was charged a subscription fee after cancelling on {date}.",
            ),
        ),
        escalatable=True,
    ),
    Intent(
        "overcharged",
        "billing",
        "high",
        1.0,
        (
            (
                "The checkout page showed {price} for the {product} but my card was charged {amount}.",
                "Customer was charged {amount} instead of {price} for the {product}.",
            ),
            (
                "My discount code was accepted at checkout but the full price was taken for order {order}.",
                "Discount not applied to order {order_id}; customer paid full price.",
            ),
            (
                "I was charged {amount} for order {order}, which is more than the total on my receipt.",
                "Customer was overcharged for order {order_id}.",
            ),
            (
                (
                    "You charged me for shipping on order {order} even though it said free delivery. "
                    "Please refund the difference."
                ),
                "Customer was charged shipping on free-delivery order {order_id}.",
            ),
            (
                "The {product} was on sale for {price}, but my statement shows {amount}. Where did the extra money go?",
                "Customer paid {amount} for a {product} on sale for {price}.",
            ),
            (
                "Bank statement says {amount} for order {order}; the order confirmation says {price}. I've been overcharged.",
                "Customer was charged {amount} instead of {price} for order {order_id}.",
            ),
        ),
        escalatable=True,
    ),
    Intent(
        "payment_declined",
        "billing",
        "medium",
        1.2,
        (
            (
                "My card keeps getting declined when I try to check out, even though it works everywhere else.",
                "Customer's card is repeatedly declined at checkout.",
            ),
            (
                "Checkout fails with 'payment error' every time I try to buy the {product}. I tried two different cards.",
                "Checkout fails with a payment error for the {product}.",
            ),
            (
                "I can't pay with PayPal on your site, it just spins and times out. Is there another way to order?",
                "PayPal payment times out at checkout.",
            ),
            (
                (
                    "I tried to renew Nimbus Plus and the payment was rejected three times. "
                    "My bank says there's no problem on their end."
                ),
                "Customer's Nimbus Plus renewal payment keeps being rejected.",
            ),
            (
                "Your payment page won't accept my postcode, so I can't finish my order for the {product}.",
                "Payment page rejects the customer's postcode for a {product} order.",
            ),
            (
                "Every time I hit 'Pay now' it says transaction declined, but I have plenty of funds. Getting a bit annoying.",
                "Customer's payment is declined at checkout despite sufficient funds.",
            ),
        ),
    ),
    Intent(
        "invoice_request",
        "billing",
        "low",
        0.7,
        (
            (
                "Could you send me a VAT invoice for order {order}? I need it for my expense report.",
                "Customer requests a VAT invoice for order {order_id}.",
            ),
            (
                "Where can I download the receipt for my {product}? I can't find it in my account.",
                "Customer asks where to download the receipt for the {product}.",
            ),
            (
                "I need an invoice with my company name on it for order {order}.",
                "Customer needs a company invoice for order {order_id}.",
            ),
            (
                "Is it possible to get a yearly statement of my Nimbus Plus payments for my taxes?",
                "Customer asks for a yearly statement of Nimbus Plus payments.",
            ),
            (
                "My accountant needs a copy of the invoice from {date}. Can you email it to me?",
                "Customer requests a copy of the invoice from {date}.",
            ),
            (
                "Quick one: can the invoice for order {order} be reissued in my business's name?",
                "Customer wants the invoice for order {order_id} reissued to their business.",
            ),
        ),
    ),
    Intent(
        "billing_question",
        "billing",
        "low",
        0.7,
        (
            (
                "How do I update the card used for my Nimbus Plus subscription?",
                "Customer asks how to update the card for Nimbus Plus.",
            ),
            ("Do you accept Apple Pay or only credit cards?", "Customer asks whether Apple Pay is accepted."),
            (
                "Can I pay for the {product} in instalments?",
                "Customer asks about paying for the {product} in instalments.",
            ),
            (
                "When exactly does the monthly Nimbus Plus charge go out? I'd like it to line up with payday.",
                "Customer asks when the monthly Nimbus Plus charge is taken.",
            ),
            (
                "Is it possible to switch my subscription from monthly to yearly billing?",
                "Customer asks to switch from monthly to yearly billing.",
            ),
            (
                "Which payment options do you offer for business customers? We'd prefer bank transfer.",
                "Customer asks about business payment options, prefers bank transfer.",
            ),
        ),
    ),
    # --- shipping -> logistics ------------------------------------------------
    Intent(
        "late_delivery",
        "shipping",
        "medium",
        1.3,
        (
            (
                "My order {order} was supposed to arrive on {date} and it still hasn't come.",
                "Order {order_id} has not arrived by the promised date.",
            ),
            (
                "I ordered a {product} {wait} ago and it's still not here. When will it be delivered?",
                "Customer's {product} is late; ordered {wait} ago.",
            ),
            (
                "Delivery for order {order} keeps getting pushed back. First it was Monday, now it says next week.",
                "Delivery of order {order_id} keeps being postponed.",
            ),
            (
                "The estimated delivery date for my {product} has passed and there's no sign of it.",
                "Customer's {product} is past its estimated delivery date.",
            ),
            (
                "It's been {wait} since I ordered and I'm still waiting on my package. I needed it for a birthday.",
                "Customer's package still not delivered after {wait}.",
            ),
            (
                "Still no {product}. The confirmation said 3-5 business days and it's been {wait}.",
                "Customer's {product} still undelivered after {wait}, past promised time.",
            ),
        ),
        escalatable=True,
    ),
    Intent(
        "tracking_stuck",
        "shipping",
        "medium",
        1.1,
        (
            (
                "Tracking for order {order} hasn't updated in {wait}. It just says 'label created'.",
                "Tracking for order {order_id} has not updated in {wait}.",
            ),
            (
                "The tracking link in my shipping email doesn't work, it says no information found.",
                "Customer's tracking link shows no information.",
            ),
            (
                "My package has been sitting at the same depot for {wait} according to tracking.",
                "Customer's package has been stuck at a depot for {wait}.",
            ),
            (
                "Can you check what's happening with order {order}? Tracking has said 'in transit' since {date}.",
                "Order {order_id} shown in transit without updates since {date}.",
            ),
            (
                "I never got a tracking number for my {product} order. How do I know where it is?",
                "Customer never received a tracking number for the {product}.",
            ),
            (
                "The courier site shows my parcel hasn't moved since {date}. Order {order}.",
                "Parcel for order {order_id} hasn't moved since {date}.",
            ),
        ),
    ),
    Intent(
        "lost_package",
        "shipping",
        "high",
        1.2,
        (
            (
                "Tracking says order {order} was delivered on {date} but nothing arrived. I checked with my neighbours too.",
                "Order {order_id} marked delivered but never received.",
            ),
            (
                "The courier told me my package with the {product} was lost in transit. I paid {price} for it.",
                "Courier lost the customer's {product} in transit.",
            ),
            (
                "My parcel was marked as delivered but it's not at my door, not in the mailroom, nowhere.",
                "Parcel marked delivered but not received.",
            ),
            (
                (
                    "Order {order} was returned to sender without anyone trying to deliver it, "
                    "and now I have neither the {product} nor my money."
                ),
                "Order {order_id} returned to sender; customer has no product or refund.",
            ),
            (
                "Your delivery photo shows a house that isn't mine. My {product} went to the wrong address.",
                "Customer's {product} was delivered to the wrong address.",
            ),
            (
                "The carrier says the box was left at the front door on {date}, but there was never any box. Order {order}.",
                "Order {order_id} reported delivered on {date} but never received.",
            ),
        ),
        escalatable=True,
    ),
    Intent(
        "shipping_question",
        "shipping",
        "low",
        0.7,
        (
            (
                "Do you ship to {country}? I'd like to order a {product}.",
                "Customer asks if Nimbus Home ships to {country}.",
            ),
            (
                "How much is express shipping, and how fast is it?",
                "Customer asks about express shipping cost and speed.",
            ),
            (
                "Can I pick up my order from a store instead of having it delivered?",
                "Customer asks about in-store pickup instead of delivery.",
            ),
            (
                "If I order the {product} today, will it arrive before {date}?",
                "Customer asks whether a {product} ordered today arrives by {date}.",
            ),
            (
                "Which courier do you use for deliveries to {country}?",
                "Customer asks which courier delivers to {country}.",
            ),
            (
                "Is free shipping available on orders to {country}, or only domestically?",
                "Customer asks whether free shipping applies to {country}.",
            ),
        ),
    ),
    # --- returns -> warehouse -------------------------------------------------
    Intent(
        "return_request",
        "returns",
        "low",
        0.9,
        (
            (
                "I'd like to return my {product}, it's unopened. How do I start a return?",
                "Customer wants to return an unopened {product}.",
            ),
            (
                "What is your return policy? The {product} isn't quite what I expected.",
                "Customer asks about the return policy for the {product}.",
            ),
            (
                "Can I still return order {order}? I bought it on {date}.",
                "Customer asks if order {order_id} from {date} can still be returned.",
            ),
            (
                "Changed my mind about the {product}. Can I send it back for a refund?",
                "Customer wants to send back the {product} for a refund.",
            ),
            (
                "Do I have to pay for return shipping if I send back the {product}?",
                "Customer asks whether return shipping for the {product} is free.",
            ),
            (
                "The {product} was a gift and the recipient already has one. How do returns work?",
                "Customer wants to return a gifted {product} and asks how returns work.",
            ),
        ),
    ),
    Intent(
        "exchange_request",
        "returns",
        "low",
        0.7,
        (
            (
                "Can I swap my {product} for the white version? It's unused.",
                "Customer wants to exchange the {product} for the white version.",
            ),
            (
                "I ordered the wrong colour on order {order}. Is an exchange possible?",
                "Customer wants to exchange order {order_id} for another colour.",
            ),
            (
                "Would it be possible to exchange the {product} for a {product2}? I'll pay the difference.",
                "Customer wants to exchange the {product} for a {product2}.",
            ),
            (
                "I'd like to trade my {product} for the larger model. How do I do that?",
                "Customer asks how to exchange the {product} for the larger model.",
            ),
            (
                "Instead of a refund, can I get a different colour of the {product}?",
                "Customer asks for a different colour of the {product} instead of a refund.",
            ),
        ),
    ),
    Intent(
        "refund_not_received",
        "returns",
        "high",
        1.2,
        (
            (
                "I returned the {product} {wait} ago and still haven't got my refund.",
                "Customer not refunded {wait} after returning the {product}.",
            ),
            (
                "Your warehouse received my return on {date} (tracking confirms it) but there's no refund yet.",
                "Return received on {date} but customer not refunded.",
            ),
            (
                "Where is my refund for order {order}? I sent it back and you confirmed receipt.",
                "Customer still awaiting refund for returned order {order_id}.",
            ),
            (
                "The return for order {order} was approved but the {price} never came back to my card.",
                "Return for order {order_id} approved but {price} not refunded.",
            ),
            (
                "I've sent the {product} back and I've been waiting {wait} for my money. This is too long.",
                "Customer waiting {wait} for refund on returned {product}.",
            ),
            (
                "The return status says 'complete' but my bank has no refund from you. Order {order}.",
                "Return for order {order_id} marked complete but no refund received.",
            ),
        ),
        escalatable=True,
    ),
    Intent(
        "arrived_broken",
        "returns",
        "high",
        1.2,
        (
            (
                "My {product} arrived with a cracked casing. I need a replacement.",
                "Customer's {product} arrived with a cracked casing; wants a replacement.",
            ),
            (
                "The box was crushed and the {product} inside is smashed. Order {order}.",
                "Customer's {product} from order {order_id} arrived smashed.",
            ),
            (
                "Opened my {product} today and a piece is snapped off. I can't use it like this.",
                "Customer's {product} arrived with a broken part.",
            ),
            (
                "Order {order} came damaged, the glass on the {product} is shattered.",
                "The {product} in order {order_id} arrived with shattered glass.",
            ),
            (
                "The {product} was dented and scratched when it arrived. I want a new one or my money back.",
                "Customer's {product} arrived dented; wants a replacement or refund.",
            ),
            (
                "Unboxed the {product} and the base is cracked right through. Please send a replacement.",
                "Customer's {product} arrived with a cracked base; wants a replacement.",
            ),
        ),
        escalatable=True,
    ),
    Intent(
        "return_label_problem",
        "returns",
        "medium",
        1.1,
        (
            (
                "I requested a return for order {order} but never got the return label email.",
                "Customer did not receive a return label for order {order_id}.",
            ),
            ("The return label you sent won't print, the PDF is blank.", "Customer's return label PDF is blank."),
            (
                "The courier didn't show up to collect my return on {date}. I stayed home all day.",
                "Courier missed the scheduled return pickup on {date}.",
            ),
            (
                "The drop-off point on my return label has closed down. Where else can I take the {product}?",
                "Return drop-off point closed; customer needs another option for the {product}.",
            ),
            (
                "The return portal gives an error when I enter order {order}.",
                "Return portal gives an error for order {order_id}.",
            ),
            (
                "It's been {wait} since I asked to return my {product} and I still have no label to ship it.",
                "Customer still has no return label for the {product} after {wait}.",
            ),
        ),
    ),
    # --- account -> accounts --------------------------------------------------
    Intent(
        "locked_out",
        "account",
        "high",
        1.0,
        (
            (
                "I can't log into my Nimbus account. The password reset email never arrives, so I can't control my {product}.",
                "Customer is locked out; password reset email never arrives.",
            ),
            (
                "My account got locked after too many attempts and now I can't use the app at all.",
                "Customer's account is locked and the app is unusable.",
            ),
            (
                "The app keeps saying 'invalid password' even after I reset it. I'm locked out of my account.",
                "Customer is locked out despite resetting the password.",
            ),
            (
                "I lost my phone and with it the two-factor codes. Now I can't get into my account to run my {product}.",
                "Customer lost their 2FA device and can't access the account.",
            ),
            (
                "My account says 'suspended' and I can't sign in. I haven't done anything wrong!",
                "Customer's account is suspended and they cannot sign in.",
            ),
            (
                "Since {date} I can't sign in to my account at all, so none of my devices can be controlled.",
                "Customer unable to sign in since {date}; cannot control devices.",
            ),
        ),
    ),
    Intent(
        "account_hacked",
        "account",
        "urgent",
        1.0,
        (
            (
                "Someone logged into my account and changed my email address. I didn't do this!",
                "Unauthorised login changed the customer's account email.",
            ),
            (
                "There are orders in my account I never placed, shipped to an address I don't know.",
                "Unknown orders were placed from the customer's account.",
            ),
            (
                "I got a login alert from another country and now my password doesn't work. I think I've been hacked.",
                "Customer's account appears hacked after a foreign login alert.",
            ),
            (
                "A stranger has access to my account and has been viewing my doorbell camera.",
                "Stranger has access to the customer's account and doorbell camera.",
            ),
            (
                "My account has been compromised. Someone switched my {product} on and off remotely and changed the password.",
                "Compromised account; someone is remotely controlling the customer's {product}.",
            ),
            (
                (
                    "I never authorised it, but my saved card was used on my account for three orders last night "
                    "and I can't log in now."
                ),
                "Account taken over; saved card used for unauthorised orders.",
            ),
        ),
    ),
    Intent(
        "account_settings",
        "account",
        "low",
        1.0,
        (
            ("How do I change the email address on my account?", "Customer asks how to change their account email."),
            ("Please delete my account and all my data.", "Customer requests deletion of their account and data."),
            (
                "Can I share access to my {product} with my partner without giving them my password?",
                "Customer asks how to share {product} access with a partner.",
            ),
            (
                "How do I stop the marketing emails? I still want order updates though.",
                "Customer wants to stop marketing emails but keep order updates.",
            ),
            (
                "I got married and want to update the name on my account.",
                "Customer wants to update the name on their account.",
            ),
            (
                "Is there a way to turn on two-factor authentication?",
                "Customer asks how to enable two-factor authentication.",
            ),
            (
                "Could you merge my two accounts? I accidentally signed up twice with different emails.",
                "Customer wants two duplicate accounts merged.",
            ),
        ),
    ),
    Intent(
        "account_annoyance",
        "account",
        "medium",
        1.0,
        (
            (
                "Verification codes take ten minutes to reach me, and by then they've expired.",
                "Verification codes arrive too late and expire.",
            ),
            ("The app logs me out every day and I have to sign in again.", "App logs the customer out every day."),
            (
                "My order history is missing everything from before {date}.",
                "Customer's order history is missing orders before {date}.",
            ),
            (
                "I changed my email but order confirmations still go to the old address.",
                "Emails still go to the customer's old address after changing it.",
            ),
            (
                "I can't update my phone number in account settings, the save button does nothing.",
                "Save button doesn't work when updating the phone number.",
            ),
            (
                "Every time I log in it asks me to accept the terms again, which is getting annoying.",
                "Customer is asked to accept the terms on every login.",
            ),
        ),
    ),
    # --- technical -> engineering ---------------------------------------------
    Intent(
        "device_dead",
        "technical",
        "high",
        1.0,
        (
            (
                "My {product} won't turn on anymore. I've tried different outlets.",
                "Customer's {product} will not turn on.",
            ),
            (
                "The {product} stopped working completely after the latest update.",
                "Customer's {product} stopped working after an update.",
            ),
            (
                "My {product} is stuck on a blinking red light and doesn't respond to anything.",
                "Customer's {product} is unresponsive with a blinking red light.",
            ),
            (
                "After a power cut the {product} is dead. No lights, nothing.",
                "Customer's {product} is dead after a power cut.",
            ),
            (
                "I bought the {product} on {date} and it already doesn't work at all. A factory reset didn't help.",
                "Customer's new {product} doesn't work at all; reset didn't help.",
            ),
            (
                "Totally unusable: the {product} boots, then shuts itself off after a second, every time.",
                "Customer's {product} shuts off immediately after booting.",
            ),
        ),
    ),
    Intent(
        "device_glitch",
        "technical",
        "medium",
        1.2,
        (
            (
                "The {product} drops off the Wi-Fi a few times a day and I have to reconnect it.",
                "Customer's {product} keeps dropping off Wi-Fi.",
            ),
            (
                "The app crashes whenever I open the schedule screen. Everything else works.",
                "App crashes when opening the schedule screen.",
            ),
            (
                "My {product} schedule runs an hour late since the clocks changed.",
                "Customer's {product} schedule runs an hour late.",
            ),
            (
                "The {product} sometimes ignores voice commands, maybe one in five.",
                "Customer's {product} intermittently ignores voice commands.",
            ),
            (
                "Notifications from the {product} arrive hours late.",
                "Customer gets {product} notifications hours late.",
            ),
            (
                "The firmware update on my {product} fails at 80% every time. It still works on the old version though.",
                "Customer's {product} firmware update keeps failing.",
            ),
            (
                "The {product} works, but it randomly disconnects from the app and shows as offline for a while.",
                "Customer's {product} intermittently shows offline in the app.",
            ),
        ),
    ),
    Intent(
        "safety_hazard",
        "technical",
        "urgent",
        1.0,
        (
            (
                "My {product} started smoking while I was using it! I unplugged it straight away.",
                "Customer's {product} started smoking during use.",
            ),
            (
                "There was a burning smell and sparks came out of the {product}'s plug.",
                "Customer's {product} sparked and smelled of burning.",
            ),
            (
                "The {product} got so hot that the plastic melted. This could have started a fire.",
                "Customer's {product} overheated and melted.",
            ),
            (
                "I got an electric shock when I touched my {product}.",
                "Customer got an electric shock from the {product}.",
            ),
            (
                "The battery in my {product} is swelling and the case is bulging.",
                "Customer's {product} has a swelling battery.",
            ),
            (
                "Flames came out of the back of the {product} last night. Luckily I was home. Is this model safe?",
                "Customer's {product} caught fire; asks if the model is safe.",
            ),
        ),
    ),
    Intent(
        "service_outage",
        "technical",
        "urgent",
        0.8,
        (
            (
                "The Nimbus app is completely down. None of my devices respond and the status page isn't loading.",
                "Nimbus app completely down; no devices respond.",
            ),
            (
                "All of our {product}s went offline at the same time and the app says 'service unavailable'.",
                "All of the customer's {product}s offline; app says service unavailable.",
            ),
            (
                "Nothing works since this morning: app, website, every device. My neighbour has the same problem.",
                "Total outage: app, website and all devices down.",
            ),
            (
                "Your servers must be down. Nobody in our office can log in and none of our {qty} {product}s work.",
                "Server outage: nobody can log in and {qty} {product}s are down.",
            ),
            (
                "Is the whole Nimbus cloud down? Every device in my house has shown offline since {date}.",
                "All devices offline since {date}; suspected cloud outage.",
            ),
            (
                "Complete outage here: the app won't load for anyone in my family and all the {product}s are unresponsive.",
                "Complete outage: app fails for everyone and all {product}s unresponsive.",
            ),
        ),
    ),
    Intent(
        "tech_question",
        "technical",
        "low",
        1.0,
        (
            (
                "Is it normal for the {product} to make a faint clicking sound when it starts?",
                "Customer asks if the {product}'s clicking sound is normal.",
            ),
            (
                "How do I connect my {product} to a new Wi-Fi network?",
                "Customer asks how to connect the {product} to new Wi-Fi.",
            ),
            (
                "Small suggestion: it would be great if the app had a dark mode.",
                "Customer suggests adding a dark mode to the app.",
            ),
            (
                "Where can I find the firmware version of my {product}?",
                "Customer asks where to find the {product} firmware version.",
            ),
            (
                "The light on my {product} blinks blue once an hour. Should I be worried?",
                "Customer asks about an hourly blue blink on the {product}.",
            ),
            (
                "Just curious, does the {product} update its firmware automatically or do I need to do it myself?",
                "Customer asks whether the {product} updates firmware automatically.",
            ),
        ),
    ),
    # --- product-question -> sales --------------------------------------------
    Intent(
        "compatibility",
        "product-question",
        "low",
        1.0,
        (
            ("Does the {product} work with Google Home?", "Customer asks if the {product} works with Google Home."),
            (
                "Will the Drift thermostat work with my old gas boiler?",
                "Customer asks if the Drift thermostat suits an old gas boiler.",
            ),
            (
                "Can the {product} be controlled without a Nimbus Plus subscription?",
                "Customer asks if the {product} works without Nimbus Plus.",
            ),
            (
                "I'm thinking of buying the {product}. Is it compatible with Alexa and HomeKit?",
                "Customer asks if the {product} supports Alexa and HomeKit.",
            ),
            ("Does the {product} use 2.4 GHz or 5 GHz Wi-Fi?", "Customer asks which Wi-Fi band the {product} uses."),
            (
                "Before I buy: will the {product} still work if my internet goes down?",
                "Customer asks if the {product} works without internet.",
            ),
        ),
    ),
    Intent(
        "product_specs",
        "product-question",
        "low",
        1.0,
        (
            ("What are the dimensions of the {product}?", "Customer asks for the dimensions of the {product}."),
            (
                "How much power does the {product} use on standby?",
                "Customer asks about the {product}'s standby power use.",
            ),
            (
                "How loud is the {product}? I want to use it in a bedroom.",
                "Customer asks how loud the {product} is for a bedroom.",
            ),
            (
                "What's the difference between the {product} and the {product2}?",
                "Customer asks how the {product} differs from the {product2}.",
            ),
            ("What's the warranty period on the {product}?", "Customer asks about the {product} warranty period."),
            (
                "Which colours does the {product} come in, and is there a travel version?",
                "Customer asks about {product} colours and a travel version.",
            ),
        ),
    ),
    Intent(
        "stock_and_pricing",
        "product-question",
        "low",
        1.0,
        (
            ("When will the {product} be back in stock?", "Customer asks when the {product} will be restocked."),
            (
                "Do you offer a discount if we buy {qty} {product}s for our office?",
                "Customer asks about a bulk discount on {qty} {product}s.",
            ),
            (
                "Will the {product} be on sale for Black Friday?",
                "Customer asks about a Black Friday sale on the {product}.",
            ),
            (
                "Is there a student discount on the {product}?",
                "Customer asks about a student discount on the {product}.",
            ),
            (
                "Are you releasing a newer version of the {product} soon? I don't want to buy right before an upgrade.",
                "Customer asks if a new {product} model is coming soon.",
            ),
            (
                "We're a small hotel looking to buy {qty} units of the {product}. Who can give us a quote?",
                "Hotel requests a quote for {qty} {product}s.",
            ),
        ),
    ),
    Intent(
        "product_feedback",
        "product-question",
        "low",
        0.8,
        (
            (
                "Just wanted to say the {product} is fantastic. Best purchase this year!",
                "Customer praises the {product}.",
            ),
            (
                "Love my new {product}. Any chance you'll make it in black?",
                "Customer loves the {product} and asks for a black version.",
            ),
            (
                "The {product} is great, but the instructions could be clearer.",
                "Customer likes the {product} but suggests clearer instructions.",
            ),
            (
                "I've had my {product} for a year and it still works perfectly. Any bundle deals if I add a {product2}?",
                "Happy customer asks about bundle deals for a {product2}.",
            ),
            (
                "Really impressed with how quiet the {product} is. Do you have other products like it?",
                "Customer praises the quiet {product} and asks about similar products.",
            ),
        ),
    ),
)

PRODUCTS: tuple[tuple[str, int], ...] = (
    ("Aurel smart kettle", 89),
    ("Lumo desk lamp", 49),
    ("Quill smart speaker", 129),
    ("Tidybot robot vacuum", 299),
    ("Breeze air purifier", 179),
    ("Vigil video doorbell", 149),
    ("Drift thermostat", 199),
    ("Ember space heater", 119),
    ("Glint light strip", 39),
    ("Kinto smart plug", 25),
)
FIRST_NAMES = (
    "Maria",
    "James",
    "Aisha",
    "Tom",
    "Priya",
    "Lukas",
    "Sofia",
    "Daniel",
    "Mei",
    "Omar",
    "Grace",
    "Mateo",
    "Hannah",
    "Kwame",
    "Elena",
    "Ravi",
    "Chloe",
    "Jonas",
    "Fatima",
    "Ben",
    "Yuki",
    "Carlos",
    "Ingrid",
    "Sam",
    "Nadia",
    "Patrick",
    "Leila",
    "Viktor",
    "Amara",
    "Ethan",
)
LAST_NAMES = (
    "Garcia",
    "Smith",
    "Khan",
    "Nguyen",
    "Müller",
    "Okafor",
    "Rossi",
    "Brown",
    "Tanaka",
    "Silva",
    "Novak",
    "O'Brien",
    "Patel",
    "Johansson",
    "Cohen",
    "Kowalski",
    "Mensah",
    "Dubois",
    "Haddad",
    "Lee",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
WAITS = ("five days", "a week", "8 days", "10 days", "nearly two weeks", "over two weeks", "three weeks")
COUNTRIES = ("Canada", "Ireland", "Germany", "Australia", "Mexico", "Norway", "Japan", "Portugal")
QUANTITIES = ("12", "15", "20", "25", "40", "50")

GREETINGS = (
    "",
    "",
    "",
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hey,",
    "Dear Nimbus Home,",
    "Good morning,",
    "Hello support team,",
    "To whom it may concern,",
    "Hi team,",
)
SIGN_OFFS = (
    "",
    "",
    "",
    "Thanks,\n{first}",
    "Thanks, {first}",
    "Regards,\n{first} {last}",
    "- {first}",
    "Cheers, {first}",
    "Best, {first} {last}",
    "Thank you.",
    "Thanks!",
)
POLITE_NOTES = (
    "Thanks for your help!",
    "Appreciate any help.",
    "Thanks in advance.",
    "Hope you can help.",
    "Let me know if you need anything else from me.",
)
FRUSTRATED_NOTES = (
    "This is really frustrating.",
    "Honestly, I expected better.",
    "I'm pretty annoyed about this.",
    "Very disappointed.",
    "I'll be leaving a one-star review.",
    "Not impressed at all.",
    "I've already emailed once and heard nothing.",
    "I'm never ordering from you again.",
)
CONTEXT_NOTES: dict[str, tuple[str, ...]] = {
    "billing": ("I ordered through your website.", "I've been a customer for years.", "I pay with a Visa card."),
    "shipping": (
        "I ordered through your website.",
        "I live in an apartment building.",
        "It was my first order with you.",
    ),
    "returns": ("I still have the original packaging.", "It was bought through your website.", "I have the receipt."),
    "account": ("I use the iPhone app.", "I use the Android app.", "I've had this account for years."),
    "technical": (
        "I already tried restarting it.",
        "The app is on the latest version.",
        "I've unplugged it and plugged it back in.",
    ),
    "product-question": (
        "I already own a couple of your products.",
        "A friend recommended you.",
        "I've been a customer for years.",
    ),
}
QUESTION_NOTES = ("The app is on the latest version.", "I use the iPhone app.", "I've been a customer for years.")
LEGAL_THREATS_TRAIN = (
    "If this isn't fixed by Friday I'm taking you to small claims court.",
    "My lawyer will be contacting you.",
    "I've already spoken to a solicitor about this.",
    "I will report Nimbus Home to the consumer protection authority if I don't hear back today.",
    "Fix this or I'm filing a lawsuit.",
    "Consider this formal notice before I take legal action.",
)
LEGAL_THREATS_EVAL = ("My attorney will be in touch if this isn't resolved this week.",)
ESCALATION_RATE = 0.3

TYPOS = {
    "received": "recieved",
    "definitely": "definately",
    "the": "teh",
    "because": "becuase",
    "really": "realy",
    "package": "pakage",
    "please": "pls",
    "thanks": "thx",
    "you": "u",
    "your": "ur",
    "address": "adress",
    "until": "untill",
    "which": "wich",
    "already": "allready",
    "order": "oder",
    "charged": "chargd",
    "still": "stil",
    "account": "acount",
    "there": "their",
    "it's": "its",
    "i'm": "im",
    "don't": "dont",
    "can't": "cant",
    "doesn't": "doesnt",
    "subscription": "subscripton",
    "refund": "refnud",
    "working": "workign",
    "delivered": "deliverd",
    "anymore": "any more",
    "never": "nevr",
}
WORD_RE = re.compile(r"[A-Za-z']+")
ARTICLE_RE = re.compile(r"\b([Aa]) (?=[AEIOU][a-z])")


def _fields(template: str) -> set[str]:
    """The placeholder names used in a format string."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integer shares proportional to ``weights`` (largest remainder)."""
    raw = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _plan(total: int, minimum: int) -> list[Intent]:
    """Intents for one split: equal share per category, then weighted within it."""
    plan: list[Intent] = []
    for category, quota in zip(CATEGORIES, _allocate(total, [1.0] * len(CATEGORIES)), strict=True):
        intents = [i for i in INTENTS if i.category == category]
        spare = quota - minimum * len(intents)
        extra = _allocate(spare, [i.weight for i in intents])
        for intent, n in zip(intents, extra, strict=True):
            plan.extend([intent] * (minimum + n))
    return plan


def _slots(rng: random.Random) -> dict[str, str]:
    """Random values for every placeholder a template may use."""
    (product, price), (product2, _) = rng.sample(PRODUCTS, 2)
    number = rng.randint(10000, 99999)
    date = rng.choice([f"{rng.choice(MONTHS)} {rng.randint(1, 28)}", rng.choice(WEEKDAYS)])
    return {
        "product": product,
        "product2": product2,
        "price": f"${price}",
        "amount": f"${price + rng.choice((10, 15, 20, 25, 30, 50))}",
        "order": rng.choice((f"#{number}", f"#{number}", str(number), f"no. {number}", f"NH-{number}")),
        "order_id": f"#{number}",
        "date": date,
        "wait": rng.choice(WAITS),
        "country": rng.choice(COUNTRIES),
        "qty": rng.choice(QUANTITIES),
        "first": rng.choice(FIRST_NAMES),
        "last": rng.choice(LAST_NAMES),
    }


def _add_typos(text: str, rng: random.Random) -> str:
    """Swap some common words for realistic misspellings, keeping capitalisation."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        typo = TYPOS.get(word.lower())
        if typo is None or rng.random() > 0.4:
            return word
        return typo.capitalize() if word[0].isupper() else typo

    return WORD_RE.sub(swap, text)


def _fix_articles(text: str) -> str:
    """Turn "a Ember space heater" into "an Ember space heater"."""
    return ARTICLE_RE.sub(r"\1n ", text)


def _render_message(intent: Intent, core: str, slots: dict[str, str], legal: str | None, rng: random.Random) -> str:
    """Wrap the core complaint in greeting, optional context/tone notes and a sign-off."""
    parts = [core.format(**slots)]
    if rng.random() < 0.25:
        notes = QUESTION_NOTES if intent.category == "technical" and intent.priority == "low" else None
        parts.insert(0 if rng.random() < 0.4 else 1, rng.choice(notes or CONTEXT_NOTES[intent.category]))
    if legal:
        parts.append(legal)
    elif intent.priority != "low" and rng.random() < 0.3:
        parts.append(rng.choice(FRUSTRATED_NOTES))
    elif rng.random() < 0.2:
        parts.append(rng.choice(POLITE_NOTES))
    body = _fix_articles(" ".join(parts))
    if rng.random() < 0.25:
        body = _add_typos(body, rng)
    if rng.random() < 0.1:
        body = body.lower()
    if rng.random() < 0.15:
        body = body.rstrip(".")
    greeting = rng.choice(GREETINGS)
    sign_off = rng.choice(SIGN_OFFS).format(**slots)
    text = body
    if greeting and rng.random() < 0.5:
        text = greeting + "\n" + text
    elif greeting:
        first_word = text.split(maxsplit=1)[0]
        if first_word not in ("I", "I'm", "I've", "I'd"):
            text = text[0].lower() + text[1:]
        text = greeting + " " + text
    if sign_off:
        text = text + "\n" + sign_off
    return text


def _triage_line(intent: Intent, summary: str, escalated: bool) -> str:
    """The assistant's answer."""
    priority = "urgent" if escalated else intent.priority
    if escalated:
        summary = summary.rstrip(".") + "; legal threat."
    if len(summary.split()) > MAX_SUMMARY_WORDS:
        raise ValueError(f"summary too long: {summary!r}")
    team = TEAMS[intent.category]
    return f"category: {intent.category} | priority: {priority} | team: {team} | summary: {_fix_articles(summary)}"


def _build_split(plan: list[Intent], held_out: bool, rng: random.Random, seen: set[str]) -> list[dict]:
    """Render one example per planned intent, skipping messages already in ``seen``."""
    escalatable = [k for k, intent in enumerate(plan) if intent.escalatable]
    escalate = set(rng.sample(escalatable, round(ESCALATION_RATE * len(escalatable))))
    threats = LEGAL_THREATS_EVAL if held_out else LEGAL_THREATS_TRAIN
    examples = []
    for k, intent in enumerate(plan):
        templates = intent.templates[-1:] if held_out else intent.templates[:-1]
        while True:
            core, summary = rng.choice(templates)
            slots = _slots(rng)
            legal = rng.choice(threats) if k in escalate else None
            user = _render_message(intent, core, slots, legal, rng)
            if user.lower() not in seen:
                break
        seen.add(user.lower())
        examples.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": _triage_line(intent, summary.format(**slots), k in escalate)},
                ]
            }
        )
    rng.shuffle(examples)
    return examples


def build(seed: int = 7, n_train: int = 360, n_eval: int = 40) -> tuple[list[dict], list[dict]]:
    """Build the train and eval splits; eval uses only held-out phrasings."""
    for intent in INTENTS:
        for core, summary in intent.templates:
            needed = {"order" if f == "order_id" else f for f in _fields(summary)}
            if not needed <= _fields(core):
                raise ValueError(f"{intent.name}: summary uses a field the message lacks: {summary!r}")
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    seen: set[str] = set()
    train = _build_split(_plan(n_train, minimum=2), False, rng, seen)
    eval_ = _build_split(_plan(n_eval, minimum=1), True, rng, seen)
    return train, eval_


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    """Write one JSON object per line, UTF-8, LF line endings."""
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _label_counts(rows: list[dict]) -> str:
    """A one-line category and priority breakdown."""
    fields = [dict(p.split(": ", 1) for p in r["messages"][2]["content"].split(" | ")) for r in rows]
    cats = Counter(f["category"] for f in fields)
    pris = Counter(f["priority"] for f in fields)
    return ", ".join(f"{c}={cats[c]}" for c in CATEGORIES) + " | " + ", ".join(f"{p}={pris[p]}" for p in PRIORITIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "support_triage")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train", type=int, default=360)
    parser.add_argument("--eval", type=int, default=40)
    args = parser.parse_args()
    train, eval_ = build(args.seed, args.train, args.eval)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("eval", eval_)):
        _write_jsonl(args.out / f"{name}.jsonl", rows)
        print(f"{name}: {len(rows)} examples | {_label_counts(rows)}")


if __name__ == "__main__":
    main()
