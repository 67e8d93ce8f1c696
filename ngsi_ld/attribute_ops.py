"""Operations on one attribute of an entity (ETSI GS CIM 009 v1.9.1, 5.6.4, 5.6.5, 5.6.19).

Mutation builders like those of :mod:`ngsi_ld.operations` (which re-exports
them): each returns a pure function from the current entity to the new one.
The attribute name is a full IRI; the instance is selected by its datasetId
(absent: the default instance).  The entity's and the instance's createdAt are
kept; modifiedAt becomes ``now``.  Each writes the copy :func:`writable_entity`
makes of the current entity, replacing what it changes: the current entity is
never changed (``keeps_current``).
"""

from __future__ import annotations

from ngsi_ld.errors import BadRequestData, ResourceNotFound
from ngsi_ld.instances import (
    check_instance,
    dataset_label,
    find_instance,
    is_delete,
    merge_instance,
    reject_instance_null,
    restamp,
    touch,
    writable_entity,
)
from ngsi_ld.model import Entity, Instance, Mutation, keeps_current


def _locate(entity: Entity, entity_id: str, name: str, dataset_id: str | None) -> int:
    instances = entity.get("attrs", {}).get(name)
    if not instances:
        raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
    index = find_instance(instances, dataset_id)
    if index is None:
        which = dataset_label(dataset_id)
        raise ResourceNotFound(
            f"attribute {name} of entity {entity_id} has no instance with {which}"
        )
    return index


# 5.6.4 Partial Attribute Update
def update_attribute(entity_id: str, name: str, fragment: Instance, now: str) -> Mutation:
    """5.6.4 Partial Attribute Update: merge an Attribute Fragment into one instance.

    ``fragment["datasetId"]`` selects the instance (absent: the default one).
    Members given replace the old ones, sub-attributes given are added or
    replaced whole, an NGSI-LD Null removes a member or a sub-attribute, and the
    Null as the main member deletes the instance (5.5.8: the member is deleted,
    as 5.6.5 would).  The fragment cannot change the attribute's type
    (BadRequestData).  Missing entity, attribute or instance: ResourceNotFound.
    """
    check_instance(name, fragment)
    dataset_id = fragment.get("datasetId")
    deletes = is_delete(fragment)

    def mutation(current: Entity | None) -> Entity | None:
        entity = writable_entity(current, entity_id, (name,))
        index = _locate(entity, entity_id, name, dataset_id)
        instances = entity["attrs"][name]
        kind = fragment.get("type")
        if deletes:
            del instances[index]
            if not instances:
                del entity["attrs"][name]
            return touch(entity, now)
        if kind is not None and kind != instances[index].get("type"):
            raise BadRequestData(
                f"attribute {name} is a {instances[index].get('type')}: a partial update "
                f"cannot make it a {kind}"
            )
        instances[index] = merge_instance(instances[index], fragment, now, deep=False)
        return touch(entity, now)

    return keeps_current(mutation)


# 5.6.19 Replace Attribute
def replace_attribute(entity_id: str, name: str, instance: Instance, now: str) -> Mutation:
    """5.6.19 Replace Attribute: the instance with the same datasetId is replaced whole.

    Its createdAt is kept.  Missing entity, attribute or instance: ResourceNotFound.
    """
    check_instance(name, instance)
    reject_instance_null(name, instance, "replace attribute")
    dataset_id = instance.get("datasetId")

    def mutation(current: Entity | None) -> Entity | None:
        entity = writable_entity(current, entity_id, (name,))
        index = _locate(entity, entity_id, name, dataset_id)
        instances = entity["attrs"][name]
        instances[index] = restamp(instance, instances[index], now)
        return touch(entity, now)

    return keeps_current(mutation)


# 5.6.5 Delete Entity Attribute
def delete_attribute(
    entity_id: str,
    name: str,
    now: str,
    *,
    dataset_id: str | None = None,
    delete_all: bool = False,
) -> Mutation:
    """5.6.5 Delete Entity Attribute: the default instance, the one with ``dataset_id``, or all.

    Missing entity, attribute or instance: ResourceNotFound.
    """

    def mutation(current: Entity | None) -> Entity | None:
        entity = writable_entity(current, entity_id, (name,))
        attrs = entity.get("attrs", {})
        if delete_all:
            if name not in attrs:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
            del attrs[name]
        else:
            index = _locate(entity, entity_id, name, dataset_id)
            del attrs[name][index]
            if not attrs[name]:
                del attrs[name]
        return touch(entity, now)

    return keeps_current(mutation)


# 5.6.5 Delete Entity Attribute, the target being scope
def delete_scope(entity_id: str, now: str) -> Mutation:
    """5.6.5.4: "If the target Attribute is scope, remove the scope Attribute".

    Missing entity, or an entity without scope: ResourceNotFound.
    """

    def mutation(current: Entity | None) -> Entity | None:
        entity = writable_entity(current, entity_id, ())
        if entity.pop("scope", None) is None:
            raise ResourceNotFound(f"entity {entity_id} has no scope")
        return touch(entity, now)

    return keeps_current(mutation)


__all__ = ["delete_attribute", "delete_scope", "replace_attribute", "update_attribute"]
