"""States and SARS (state, action, reward, next state) for the RL engine."""

from __future__ import annotations

from mongoengine import (
    BooleanField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    IntField,
    ListField,
    ObjectIdField,
    StringField,
)

from recommender.models.activity import SearchData


class State(EmbeddedDocument):
    user = IntField(null=True)  # None: an anonymous visitor
    services_history = ListField(IntField())
    candidates = ListField(IntField())
    search_data = EmbeddedDocumentField(SearchData, default=SearchData)


class Sars(Document):
    state = EmbeddedDocumentField(State, required=True)
    action = ListField(IntField())
    # One list of symbolic rewards per recommended service.
    reward = ListField(ListField(StringField()))
    next_state = EmbeddedDocumentField(State, null=True)
    terminal = BooleanField(default=False)
    synthetic = BooleanField(default=False)
    source_recommendation = ObjectIdField(null=True)
    meta = {"indexes": ["source_recommendation", "synthetic"]}
