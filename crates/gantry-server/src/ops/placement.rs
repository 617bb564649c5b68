//! From the API's placementStrategy / placementConstraints to the scheduler's request, with the
//! ECS validation messages.

use gantry_api::model::{
    PlacementConstraint, PlacementConstraintType, PlacementStrategy, PlacementStrategyType,
    TaskDefinition,
};
use gantry_api::ApiError;
use gantry_scheduler::{query, BinpackField, Constraint, SpreadField, Strategy};

/// At most this many strategies per request, as in ECS.
pub const MAX_STRATEGIES: usize = 5;
/// At most this many constraints per request, as in ECS.
pub const MAX_CONSTRAINTS: usize = 10;

/// Parses a cluster query language expression, as an InvalidParameterException when malformed.
pub fn expression(s: &str) -> Result<query::Query, ApiError> {
    if s.len() > 2000 {
        return Err(ApiError::invalid(
            "Invalid expression: at most 2000 characters.",
        ));
    }
    query::Query::parse(s).map_err(|e| ApiError::invalid(format!("Invalid expression '{s}': {e}.")))
}

pub fn strategies(given: Option<&[PlacementStrategy]>) -> Result<Vec<Strategy>, ApiError> {
    let given = given.unwrap_or_default();
    if given.len() > MAX_STRATEGIES {
        return Err(ApiError::invalid(format!(
            "Invalid 'placementStrategy': at most {MAX_STRATEGIES} strategies."
        )));
    }
    given
        .iter()
        .map(|s| {
            let field = s.field.as_deref();
            match (s.r#type, field) {
                (Some(PlacementStrategyType::Random), None) => Ok(Strategy::Random),
                (Some(PlacementStrategyType::Random), Some(f)) => {
                    Err(ApiError::invalid(format!("Invalid 'placementStrategy': random takes no field, found '{f}'.")))
                }
                (Some(PlacementStrategyType::Binpack), Some(f)) if f.eq_ignore_ascii_case("memory") => {
                    Ok(Strategy::Binpack(BinpackField::Memory))
                }
                (Some(PlacementStrategyType::Binpack), Some(f)) if f.eq_ignore_ascii_case("cpu") => Ok(Strategy::Binpack(BinpackField::Cpu)),
                (Some(PlacementStrategyType::Binpack), f) => Err(ApiError::invalid(format!(
                    "Invalid 'placementStrategy': binpack needs the field cpu or memory, found {f:?}."
                ))),
                (Some(PlacementStrategyType::Spread), Some("instanceId" | "host")) => Ok(Strategy::Spread(SpreadField::Instance)),
                (Some(PlacementStrategyType::Spread), Some(f)) if f.starts_with("attribute:") && f.len() > 10 => {
                    Ok(Strategy::Spread(SpreadField::Attribute(f["attribute:".len()..].to_string())))
                }
                (Some(PlacementStrategyType::Spread), f) => Err(ApiError::invalid(format!(
                    "Invalid 'placementStrategy': spread needs the field instanceId, host or attribute:<name>, found {f:?}."
                ))),
                (None, _) => Err(ApiError::invalid("Invalid 'placementStrategy': every strategy needs a type.")),
            }
        })
        .collect()
}

/// The request's constraints, then the task definition's (both apply).
pub fn constraints(
    given: Option<&[PlacementConstraint]>,
    td: &TaskDefinition,
) -> Result<Vec<Constraint>, ApiError> {
    let given = given.unwrap_or_default();
    if given.len() > MAX_CONSTRAINTS {
        return Err(ApiError::invalid(format!(
            "Invalid 'placementConstraints': at most {MAX_CONSTRAINTS} constraints."
        )));
    }
    let mut out = Vec::new();
    for c in given {
        match (c.r#type, c.expression.as_deref()) {
            (Some(PlacementConstraintType::DistinctInstance), None) => {
                out.push(Constraint::DistinctInstance)
            }
            (Some(PlacementConstraintType::DistinctInstance), Some(_)) => {
                return Err(ApiError::invalid(
                    "Invalid 'placementConstraints': distinctInstance takes no expression.",
                ))
            }
            (Some(PlacementConstraintType::MemberOf), Some(e)) => {
                out.push(Constraint::MemberOf(expression(e)?))
            }
            (Some(PlacementConstraintType::MemberOf), None) => {
                return Err(ApiError::invalid(
                    "Invalid 'placementConstraints': memberOf needs an expression.",
                ))
            }
            (None, _) => {
                return Err(ApiError::invalid(
                    "Invalid 'placementConstraints': every constraint needs a type.",
                ))
            }
        }
    }
    for c in td.placement_constraints.iter().flatten() {
        if let Some(e) = c.expression.as_deref() {
            out.push(Constraint::MemberOf(expression(e)?));
        }
    }
    Ok(out)
}
