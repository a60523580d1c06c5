"""The Marketplace catalogue: the 13 entity kinds of a `/update` dump.

Marketplace ids are the documents' `_id`; references are stored as raw integer ids.
"""

from __future__ import annotations

from mongoengine import (
    BooleanField,
    Document,
    IntField,
    ListField,
    StringField,
)

IntList = lambda: ListField(IntField())  # noqa: E731 - a field factory, not logic

RECOMMENDABLE_STATUSES = ("published", "unverified")


class Category(Document):
    id = IntField(primary_key=True)
    name = StringField()


class ScientificDomain(Document):
    id = IntField(primary_key=True)
    name = StringField()


class Platform(Document):
    id = IntField(primary_key=True)
    name = StringField()


class Provider(Document):
    id = IntField(primary_key=True)
    pid = StringField(null=True)
    name = StringField()


class _Described(Document):
    meta = {"abstract": True}
    id = IntField(primary_key=True)
    name = StringField()
    description = StringField(null=True)


class TargetUser(_Described):
    pass


class AccessMode(_Described):
    pass


class AccessType(_Described):
    pass


class Trl(_Described):
    pass


class LifeCycleStatus(_Described):
    pass


class ResearchStep(_Described):
    pass


class User(Document):
    id = IntField(primary_key=True)
    aai_uid = StringField()
    scientific_domains = IntList()
    categories = IntList()
    accessed_services = IntList()  # chronological: the user's orders
    synthetic = BooleanField(default=False)
    meta = {"indexes": ["aai_uid"]}


class Service(Document):
    id = IntField(primary_key=True)
    pid = StringField(null=True)
    name = StringField()
    description = StringField(null=True)
    tagline = StringField(null=True)
    countries = ListField(StringField())
    order_type = StringField(null=True)
    rating = StringField(null=True)
    horizontal = BooleanField(default=False)
    status = StringField(null=True)
    categories = IntList()
    providers = IntList()
    resource_organisation = IntField(null=True)
    scientific_domains = IntList()
    platforms = IntList()
    target_users = IntList()
    access_modes = IntList()
    access_types = IntList()
    trls = IntList()
    life_cycle_statuses = IntList()
    research_steps = IntList()
    related_services = IntList()
    required_services = IntList()
    meta = {"indexes": ["status"]}


class Project(Document):
    id = IntField(primary_key=True)
    user_id = IntField()
    services = IntList()
    meta = {"indexes": ["user_id"]}


# Dump key -> document class, in load order (referenced kinds first).
DUMP_ENTITIES: dict[str, type[Document]] = {
    "categories": Category,
    "providers": Provider,
    "scientific_domains": ScientificDomain,
    "platforms": Platform,
    "target_users": TargetUser,
    "access_modes": AccessMode,
    "access_types": AccessType,
    "trls": Trl,
    "life_cycle_statuses": LifeCycleStatus,
    "research_steps": ResearchStep,
    "services": Service,
    "users": User,
    "projects": Project,
}
