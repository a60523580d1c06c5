"""InterestRule: services sharing the most declared interests with the user, then the most
popular; no trained model. The baseline every learned engine must beat."""

from recommender.engines.spec import EngineSpec

SPEC = EngineSpec(
    name="rule",
    top_k="InterestRule",
    ranking="InterestRuleRanking",
    serve="recommender.engines.rule.engine:build",
    # For a visitor without declared interests the rule is "search filters matched, then
    # popularity": Popularity's ranking with less data (orders only, no panel clicks), so the
    # selector keeps anonymous traffic on Popularity. Asked directly (off-policy evaluation,
    # benchmarks), the engine scores an anonymous request by its search filters.
    anonymous=False,
    description="Most declared categories and scientific domains shared, then most accessed.",
)
