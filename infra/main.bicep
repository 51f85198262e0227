// The whole deployment, keyless: `azd up` (or `az deployment sub create -f infra/main.bicep`).
// A resource group holding everything app.bicep makes.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment; names the resource group and seeds unique resource names.')
param environmentName string

@minLength(1)
@description('Region of every resource but the bot (global). Must offer Flex Consumption: az functionapp list-flexconsumption-locations')
@metadata({ azd: { type: 'location' } })
param location string

@description('The bot\'s name as Teams shows it.')
param botDisplayName string = 'Proactive Bot'

@description('Flex Consumption instance cap (40 is the lowest the plan accepts, 1000 the highest).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Sends per second per budget: per app per tenant for Teams (about 50), per channel for the others; shared by the instances.')
@minValue(1)
param maxSendsPerSecond int = 50

@description('Optional cap on sends per second over all budgets together (the app\'s own capacity); empty = none.')
param maxAppSendsPerSecond string = ''

@description('Azure Bot pricing tier: F0 (free: standard channels, which include Teams, are unlimited) or S1.')
@allowed(['F0', 'S1'])
param botSku string = 'F0'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'proactive-bot'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    botDisplayName: botDisplayName
    maximumInstanceCount: maximumInstanceCount
    maxSendsPerSecond: maxSendsPerSecond
    maxAppSendsPerSecond: maxAppSendsPerSecond
    botSku: botSku
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = app.outputs.functionAppName
// The Teams app package takes it: `make package` (BOT_APP_ID from `azd env get-values`).
output BOT_APP_ID string = app.outputs.botAppId
output BOT_MESSAGING_ENDPOINT string = app.outputs.messagingEndpoint
